package dev.kiln.opt;

import dev.kiln.ir.Graph;

/**
 * One named graph-to-graph rewrite. A pass never changes its input: it builds a new
 * graph (usually with {@link GraphTransformer}) that computes the same outputs from the
 * same inputs, and says what it changed.
 */
public interface GraphPass {
    /** A short stable name, as shown in pipeline reports. */
    String name();

    /** The rewritten graph and what changed; an unchanged graph when there was nothing to do. */
    PassResult run(Graph graph);
}
