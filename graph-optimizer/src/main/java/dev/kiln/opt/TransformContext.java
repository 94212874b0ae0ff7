package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The state of one {@link GraphTransformer} run: the new graph being built, the map from
 * old values to new ones, and the new graph's nodes (so rules can look at what produced
 * a new value, which may differ from what produced the old one).
 *
 * <p>Values are "old" (of the source graph) or "new" (of the graph being built); each
 * method says which it takes. Every replacement must keep the dtype and shape of the value
 * it replaces, and every copied node must infer the metas it had: a pass that breaks this
 * fails here, naming the node, instead of producing a mistyped graph.
 */
public final class TransformContext {
    private final Graph source;
    private final GraphBuilder builder = new GraphBuilder();
    private final List<Node> built = new ArrayList<>();
    private final Map<ValueRef, ValueRef> valueMap = new HashMap<>();
    /** Old ids of dropped nodes, so that a later use can say so. */
    private final Set<Integer> dropped = new HashSet<>();
    private Node.Apply current;

    TransformContext(Graph source) {
        this.source = source;
    }

    /** The graph being transformed. */
    public Graph source() { return source; }

    // ---------------------------------------------------------------- reading

    /** The new value standing for old value {@code old}. */
    public ValueRef value(ValueRef old) {
        ValueRef v = valueMap.get(old);
        if (v == null) {
            String user = current == null ? "a graph output" : "%" + current.id();
            throw new IllegalStateException("value " + old + " is used by " + user + " but "
                    + (dropped.contains(old.node()) ? "was dropped" : "has not been defined"));
        }
        return v;
    }

    /** The new values standing for old values {@code old}. */
    public List<ValueRef> values(List<ValueRef> old) {
        List<ValueRef> out = new ArrayList<>(old.size());
        for (ValueRef v : old) out.add(value(v));
        return out;
    }

    /** dtype and shape of a new value. */
    public TensorMeta meta(ValueRef newValue) { return builder.meta(newValue); }

    /** The node of the new graph that produces new value {@code newValue}. */
    public Node producer(ValueRef newValue) { return built.get(newValue.node()); }

    /** The op that produces new value {@code newValue}, or null when it is a graph input. */
    public Op producerOp(ValueRef newValue) {
        return producer(newValue) instanceof Node.Apply ap ? ap.op() : null;
    }

    // ---------------------------------------------------------------- writing

    /** Copies old node {@code node} as it is, over the new values of its inputs; returns its new outputs. */
    public List<ValueRef> copy(Node.Apply node) {
        List<ValueRef> out = emit(node.op(), values(node.inputs()));
        for (int i = 0; i < out.size(); i++) {
            if (!meta(out.get(i)).equals(node.outputs().get(i))) {
                throw new IllegalStateException("copying %" + node.id() + " (" + node.op().name() + ") over "
                        + values(node.inputs()) + " infers " + metas(out) + " instead of " + node.outputs());
            }
        }
        replace(node, out);
        return out;
    }

    /** Adds a new node applying {@code op} to new values {@code args}; its metas come from the op registry. */
    public List<ValueRef> emit(Op op, List<ValueRef> args) {
        List<ValueRef> out = builder.apply(op, args);
        built.add(new Node.Apply(builder.size() - 1, op, args, metas(out)));
        return out;
    }

    /** Adds a new single-output node; see {@link #emit}. */
    public ValueRef emit1(Op op, List<ValueRef> args) { return emit(op, args).get(0); }

    /** Makes new values {@code newValues} stand for the outputs of old node {@code node}. */
    public void replace(Node.Apply node, List<ValueRef> newValues) {
        if (newValues.size() != node.outputs().size()) {
            throw new IllegalStateException("%" + node.id() + " has " + node.outputs().size() + " outputs, replaced by "
                    + newValues.size() + " values");
        }
        for (int i = 0; i < newValues.size(); i++) {
            TensorMeta was = node.outputs().get(i), now = meta(newValues.get(i));
            if (!was.equals(now)) {
                throw new IllegalStateException("replacing " + node.value(i) + " (" + was + ") by new value "
                        + newValues.get(i) + " (" + now + ") would change its type");
            }
            valueMap.put(node.value(i), newValues.get(i));
        }
    }

    /** Makes new value {@code newValue} stand for the single output of old node {@code node}. */
    public void replace(Node.Apply node, ValueRef newValue) { replace(node, List.of(newValue)); }

    /** Leaves old node {@code node} out of the new graph; a later use of its outputs is an error. */
    public void drop(Node.Apply node) { dropped.add(node.id()); }

    // ---------------------------------------------------------------- driving (GraphTransformer)

    void copyInput(Node.Input in) {
        ValueRef v = builder.input(in.meta());
        built.add(new Node.Input(v.node(), in.index(), in.meta()));
        valueMap.put(in.value(0), v);
    }

    void begin(Node.Apply node) { current = node; }

    void end(Node.Apply node) {
        boolean mapped = valueMap.containsKey(node.value(0));
        if (mapped == dropped.contains(node.id())) {
            throw new IllegalStateException("the transform must either map or drop %" + node.id() + " (" + node.op().name()
                    + "), and " + (mapped ? "did both" : "did neither"));
        }
        current = null;
    }

    Graph build() {
        return builder.build(values(source.outputs()));
    }

    private List<TensorMeta> metas(List<ValueRef> values) {
        List<TensorMeta> out = new ArrayList<>(values.size());
        for (ValueRef v : values) out.add(meta(v));
        return out;
    }
}
