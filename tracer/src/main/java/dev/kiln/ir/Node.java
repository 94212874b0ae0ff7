package dev.kiln.ir;

import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;

import java.util.List;

/** A node of a graph: a graph input, or an op applied to earlier values. */
public sealed interface Node {
    int id();

    List<TensorMeta> outputs();

    default ValueRef value(int output) { return new ValueRef(id(), output); }

    /** The {@code index}-th input of the graph. */
    record Input(int id, int index, TensorMeta meta) implements Node {
        public List<TensorMeta> outputs() { return List.of(meta); }
    }

    /** {@code op} applied to {@code inputs}, producing values of the given metas. */
    record Apply(int id, Op op, List<ValueRef> inputs, List<TensorMeta> outputs) implements Node {
        public Apply {
            inputs = List.copyOf(inputs);
            outputs = List.copyOf(outputs);
        }
    }
}
