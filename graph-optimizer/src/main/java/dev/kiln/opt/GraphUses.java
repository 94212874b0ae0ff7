package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Who reads each value of a graph (graph outputs count as one use each), for passes that
 * match multi-node patterns: a pattern may swallow an intermediate value only when nothing
 * outside it reads that value.
 */
public final class GraphUses {
    private final Graph graph;
    private final Map<ValueRef, List<Node.Apply>> users = new HashMap<>();
    private final Map<ValueRef, Integer> counts = new HashMap<>();

    public GraphUses(Graph graph) {
        this.graph = graph;
        for (Node n : graph.nodes()) {
            if (!(n instanceof Node.Apply ap)) continue;
            for (ValueRef v : ap.inputs()) {
                users.computeIfAbsent(v, k -> new ArrayList<>()).add(ap);
                counts.merge(v, 1, Integer::sum);
            }
        }
        for (ValueRef v : graph.outputs()) counts.merge(v, 1, Integer::sum);
    }

    /** Reads of {@code v} by ops and graph outputs. */
    int count(ValueRef v) { return counts.getOrDefault(v, 0); }

    /** Whether {@code user} is the only reader of {@code v} (and reads it once). */
    boolean onlyUser(ValueRef v, Node.Apply user) {
        return count(v) == 1 && users.getOrDefault(v, List.of()).equals(List.of(user));
    }

    /** The single-output op producing {@code v}; null for a graph input. */
    Node.Apply producer(ValueRef v) {
        return graph.node(v.node()) instanceof Node.Apply ap && ap.outputs().size() == 1 ? ap : null;
    }

    /** The single-output op producing {@code v} when v is read exactly once, so a pattern can absorb it; else null. */
    public Node.Apply singleUseProducer(ValueRef v) {
        return count(v) == 1 ? producer(v) : null;
    }
}
