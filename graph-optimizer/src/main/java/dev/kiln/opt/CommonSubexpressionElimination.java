package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Op;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Merges op nodes that compute the same thing: equal ops (op records compare their
 * attributes by value, doubles as {@link Double#compare} does, so {@code 0.0} and
 * {@code -0.0} differ and NaN equals NaN) over the same inputs, after earlier merges.
 * The later node is not emitted; its uses read the earlier node's outputs instead.
 *
 * <p>Safe because no op in the registry has side effects or randomness: each is a pure
 * function of its inputs and attributes, so equal ops on equal inputs give equal
 * outputs. (A future random or stateful op must be excluded here.) Operands are matched
 * as written; {@code add(a, b)} and {@code add(b, a)} are not merged.
 */
public final class CommonSubexpressionElimination implements GraphPass {

    /** An op applied to new values: equal keys compute equal outputs. */
    private record Key(Op op, List<ValueRef> inputs) {}

    /** The first node computing a key: its new outputs, and its id for the report. */
    private record First(List<ValueRef> outputs, int oldId) {}

    @Override
    public String name() { return "common-subexpression-elimination"; }

    @Override
    public PassResult run(Graph graph) {
        Map<Key, First> seen = new HashMap<>();
        List<String> details = new ArrayList<>();
        Graph out = GraphTransformer.transform(graph, (cx, node) -> {
            Key key = new Key(node.op(), cx.values(node.inputs()));
            First first = seen.get(key);
            if (first == null) {
                seen.put(key, new First(cx.copy(node), node.id()));
            } else {
                cx.replace(node, first.outputs());
                details.add("%" + node.id() + " (" + node.op().name() + ") repeats %" + first.oldId());
            }
        });
        return PassResult.of(out, "merged", details);
    }
}
