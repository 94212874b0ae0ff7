package dev.kiln.ir;

import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;

import java.util.ArrayList;
import java.util.List;

/** Builds a {@link Graph} node by node; each {@code apply} checks its inputs with the op registry. */
public final class GraphBuilder {
    private final List<Node> nodes = new ArrayList<>();
    private int inputs;

    public ValueRef input(TensorMeta meta) {
        Node.Input n = new Node.Input(nodes.size(), inputs++, meta);
        nodes.add(n);
        return n.value(0);
    }

    /** Adds {@code op} over {@code args}; its output metas come from {@link Op#infer}. */
    public List<ValueRef> apply(Op op, List<ValueRef> args) {
        List<TensorMeta> in = new ArrayList<>(args.size());
        for (ValueRef a : args) in.add(meta(a));
        return apply(op, args, op.infer(in));
    }

    /** Adds a node whose output metas are already known (as a tracer knows them). */
    public List<ValueRef> apply(Op op, List<ValueRef> args, List<TensorMeta> outputs) {
        for (ValueRef a : args) {
            if (a.node() < 0 || a.node() >= nodes.size()) throw new IllegalArgumentException("unknown value " + a);
        }
        Node.Apply n = new Node.Apply(nodes.size(), op, args, outputs);
        nodes.add(n);
        List<ValueRef> out = new ArrayList<>(outputs.size());
        for (int i = 0; i < outputs.size(); i++) out.add(n.value(i));
        return out;
    }

    public TensorMeta meta(ValueRef v) { return nodes.get(v.node()).outputs().get(v.output()); }

    /** The node that produces {@code v}. */
    public Node producer(ValueRef v) { return nodes.get(v.node()); }

    /** True when some node applied so far takes {@code v} as an input. */
    public boolean isRead(ValueRef v) {
        for (Node n : nodes) if (n instanceof Node.Apply ap && ap.inputs().contains(v)) return true;
        return false;
    }

    public int size() { return nodes.size(); }

    public Graph build(List<ValueRef> outputs) { return new Graph(nodes, outputs); }
}
