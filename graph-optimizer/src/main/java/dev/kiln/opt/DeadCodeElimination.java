package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;

import java.util.ArrayList;
import java.util.List;

/**
 * Removes op nodes that no graph output depends on.
 *
 * <p>Safe because every op in the registry is a pure function of its inputs (no side
 * effects, no randomness, no aliasing writes), so a value nobody reads cannot affect
 * the outputs. Graph inputs are always kept, used or not, so that input indices (how
 * callers bind arguments) never change. A node with several outputs stays while any of
 * its outputs is used.
 *
 * <p>An op that would fail at run time on its inputs (an integer division by zero, say)
 * no longer fails once removed; like every compiler that removes dead code, this pass
 * treats the error as part of the dead computation.
 */
public final class DeadCodeElimination implements GraphPass {

    @Override
    public String name() { return "dead-code-elimination"; }

    @Override
    public PassResult run(Graph graph) {
        boolean[] live = liveNodes(graph);
        List<String> details = new ArrayList<>();
        Graph out = GraphTransformer.transform(graph, (cx, node) -> {
            if (live[node.id()]) {
                cx.copy(node);
            } else {
                cx.drop(node);
                details.add("%" + node.id() + " (" + node.op().name() + ") is unused");
            }
        });
        return PassResult.of(out, "removed", details);
    }

    /** Nodes some graph output depends on: a backward sweep, since nodes are in topological order. */
    static boolean[] liveNodes(Graph graph) {
        boolean[] live = new boolean[graph.nodes().size()];
        for (ValueRef v : graph.outputs()) live[v.node()] = true;
        for (int id = live.length - 1; id >= 0; id--) {
            if (live[id] && graph.node(id) instanceof Node.Apply ap) {
                for (ValueRef in : ap.inputs()) live[in.node()] = true;
            }
        }
        return live;
    }
}
