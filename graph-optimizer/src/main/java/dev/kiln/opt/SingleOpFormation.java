package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Op;

import java.util.ArrayList;
import java.util.List;

/**
 * The shared loop of the passes that re-form a written-out pattern into one op: each node a
 * matcher recognises as a pattern's root is replaced by the op over the pattern's operands;
 * the pattern's other nodes are left for dead-code elimination.
 */
final class SingleOpFormation {
    private SingleOpFormation() {}

    /** A recognised pattern: the new op, its operands (old values) and a description. */
    record Match(Op op, List<ValueRef> args, String what) {}

    /** Finds the pattern rooted at {@code node}, or null. */
    @FunctionalInterface
    interface Matcher {
        Match match(Graph graph, GraphUses uses, Node.Apply node);
    }

    static PassResult run(Graph graph, Matcher matcher) {
        GraphUses uses = new GraphUses(graph);
        List<String> details = new ArrayList<>();
        Graph out = GraphTransformer.transform(graph, (cx, node) -> {
            Match m = matcher.match(graph, uses, node);
            if (m == null) {
                cx.copy(node);
                return;
            }
            cx.replace(node, cx.emit1(m.op(), cx.values(m.args())));
            details.add("%" + node.id() + " (" + node.op().name() + "): " + m.what());
        });
        return PassResult.of(out, "formed", details);
    }
}
