package dev.kiln.opt;

import dev.kiln.ir.Graph;

import java.util.ArrayList;
import java.util.List;

/**
 * Runs passes in a fixed order, round after round, until a whole round changes nothing
 * (a fixed point) or a round cap is reached, recording what every pass did.
 *
 * <p>The {@linkplain #standard() standard} order is:
 * <ol>
 * <li>{@link AlgebraicSimplification}: removes identities and composes views, exposing
 *     constants and duplicates;
 * <li>{@link ConstantFolding}: turns ops over uniform constants into constants, which may
 *     make further identities visible next round;
 * <li>{@link FormNormalization}: re-forms softmax and RMS normalisation written op by op
 *     into single ops;
 * <li>{@link FormActivation}: re-forms silu and gelu written op by op into single ops;
 * <li>{@link FormAttention}: re-forms hand-written attention into one attention op, once
 *     transposes are composed and constant masks folded where they can be;
 * <li>{@link CommonSubexpressionElimination}: merges what the first two made equal;
 * <li>{@link DeadCodeElimination}: removes what the others left unused (the operands of
 *     folded and simplified ops, the later copies of merged ones).
 * </ol>
 * Only {@link FormAttention} adds nodes (an attention op, and for a run-time bool mask the
 * few cheap ops that keep the pattern's NaN rows) in place of the four or more it
 * replaces; since the pipeline stops only at a fixed point, running it again on its own
 * output changes nothing. Last, {@link FreshOutputs} copies an output the passes turned into
 * an input's memory, so the caller gets new memory where the traced code made a new value. Later stages (fusion, memory planning, lowering) are more
 * {@link GraphPass}es: a pipeline is any list of them.
 */
public final class Pipeline {
    /** Enough for the chains of rewrites traced code produces; each round is linear in the graph size. */
    public static final int DEFAULT_MAX_ROUNDS = 10;

    private final List<GraphPass> passes;
    private final int maxRounds;

    public Pipeline(List<GraphPass> passes, int maxRounds) {
        if (passes.isEmpty()) throw new IllegalArgumentException("a pipeline needs at least one pass");
        if (maxRounds < 1) throw new IllegalArgumentException("maxRounds must be at least 1, got " + maxRounds);
        this.passes = List.copyOf(passes);
        this.maxRounds = maxRounds;
    }

    /** simplify, fold, form normalisations, form attention, fold its output permute, CSE, DCE, repeated to a fixed point (at most {@value #DEFAULT_MAX_ROUNDS} rounds). */
    public static Pipeline standard() {
        return new Pipeline(List.of(new AlgebraicSimplification(), new ConstantFolding(), new FormNormalization(),
                new FormActivation(), new FormAttention(), new FoldAttentionOutputPermute(),
                new CommonSubexpressionElimination(), new DeadCodeElimination()), DEFAULT_MAX_ROUNDS);
    }

    public List<GraphPass> passes() { return passes; }

    public int maxRounds() { return maxRounds; }

    /** What one pass did in one round; node counts include graph inputs. */
    public record PassReport(int round, String pass, int nodesBefore, int nodesAfter, String summary, List<String> details) {
        public PassReport {
            details = List.copyOf(details);
        }

        public boolean changed() { return !details.isEmpty(); }
    }

    /** The optimized graph, every pass's report, and whether the last round changed nothing. */
    public record Result(Graph graph, List<PassReport> reports, int rounds, boolean reachedFixedPoint) {
        public Result {
            reports = List.copyOf(reports);
        }

        /** One line per pass run that changed something, then its details, indented. */
        public String explain() {
            StringBuilder sb = new StringBuilder();
            for (PassReport r : reports) {
                if (!r.changed()) continue;
                sb.append("round ").append(r.round()).append(' ').append(r.pass()).append(": ").append(r.summary())
                        .append(" (").append(r.nodesBefore()).append(" -> ").append(r.nodesAfter()).append(" nodes)\n");
                for (String d : r.details()) sb.append("    ").append(d).append('\n');
            }
            sb.append(reachedFixedPoint ? "fixed point after " + rounds + (rounds == 1 ? " round" : " rounds")
                    : "stopped at the cap of " + rounds + " rounds before reaching a fixed point").append('\n');
            return sb.toString();
        }
    }

    public Result run(Graph graph) {
        List<PassReport> reports = new ArrayList<>();
        Graph current = graph;
        for (int round = 1; round <= maxRounds; round++) {
            Graph roundStart = current;
            for (GraphPass pass : passes) current = report(reports, round, pass.name(), current, pass.run(current));
            if (current.equals(roundStart)) {
                return new Result(report(reports, round, FreshOutputs.NAME, current, FreshOutputs.apply(graph, current)), reports, round, true);
            }
        }
        Graph fresh = report(reports, maxRounds, FreshOutputs.NAME, current, FreshOutputs.apply(graph, current));
        return new Result(fresh, reports, maxRounds, false);
    }

    private static Graph report(List<PassReport> reports, int round, String pass, Graph before, PassResult r) {
        reports.add(new PassReport(round, pass, before.nodes().size(), r.graph().nodes().size(), r.summary(), r.details()));
        return r.graph();
    }
}
