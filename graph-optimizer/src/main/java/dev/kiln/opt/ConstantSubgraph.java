package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Dispatch;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.GraphInterpreter;

import java.util.HashMap;
import java.util.Map;
import java.util.TreeSet;

/**
 * Values a graph computes from constants alone (no graph input upstream), evaluated at
 * compile time on the eager kernels, as a pass needs to know them (a causal mask built
 * with {@code ones(...).tril()} inside the traced code, say). Captured tensors are graph
 * inputs, read by reference at every call, so they never count as constants.
 */
final class ConstantSubgraph {
    private ConstantSubgraph() {}

    /** Whether any graph input is upstream of {@code v}. */
    static boolean dependsOnInputs(Graph g, ValueRef v) {
        return ancestors(g, v) == null;
    }

    /**
     * The value of constant {@code v}, computed now; null when it depends on an input, has
     * more than {@code maxElements} elements or fails to evaluate (it then fails at run time
     * too, where the error belongs).
     */
    static Tensor evaluate(Graph g, ValueRef v, long maxElements) {
        if (g.meta(v).shape().numel() > maxElements) return null;
        TreeSet<Integer> nodes = ancestors(g, v);
        if (nodes == null) return null;
        GraphBuilder b = new GraphBuilder();
        Map<ValueRef, ValueRef> map = new HashMap<>();
        for (int id : nodes) {
            Node.Apply ap = (Node.Apply) g.node(id);
            var out = b.apply(ap.op(), ap.inputs().stream().map(map::get).toList());
            for (int o = 0; o < out.size(); o++) map.put(ap.value(o), out.get(o));
        }
        try {
            Graph constant = b.build(java.util.List.of(map.get(v)));
            // Compiling may happen while a tracer intercepts this thread: the mask is computed for real.
            return Dispatch.eagerly(() -> new GraphInterpreter(constant).run(new Tensor[0])[0]);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** The op nodes {@code v} depends on, in graph order; null when a graph input is among them. */
    private static TreeSet<Integer> ancestors(Graph g, ValueRef v) {
        TreeSet<Integer> seen = new TreeSet<>();
        java.util.ArrayDeque<Integer> todo = new java.util.ArrayDeque<>();
        todo.push(v.node());
        while (!todo.isEmpty()) {
            int id = todo.pop();
            if (!seen.add(id)) continue;
            if (!(g.node(id) instanceof Node.Apply ap)) return null;
            for (ValueRef in : ap.inputs()) todo.push(in.node());
        }
        return seen;
    }
}
