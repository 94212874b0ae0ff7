/**
 * The graph optimizer: passes that rewrite the traced IR ({@code dev.kiln.ir}) into
 * cheaper graphs computing the same values.
 *
 * <p>Every pass is a {@link dev.kiln.opt.GraphPass}: it never changes its input graph but
 * builds a new one with {@link dev.kiln.opt.GraphTransformer} (a node-by-node copy whose
 * per-node rule copies, replaces or drops each node), and returns it with a summary of
 * what changed ({@link dev.kiln.opt.PassResult}). {@link dev.kiln.opt.Pipeline} runs a
 * list of passes to a fixed point and keeps every pass's report, for {@code Kiln.explain}.
 */
package dev.kiln.opt;
