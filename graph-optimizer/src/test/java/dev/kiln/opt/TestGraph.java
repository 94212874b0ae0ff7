package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;

import java.util.List;

/** Terse construction of small graphs for the pass examples. */
final class TestGraph {
    private final GraphBuilder b = new GraphBuilder();

    ValueRef input(DType t, int... dims) { return b.input(new TensorMeta(t, Shape.of(dims))); }

    ValueRef full(double value, DType t, int... dims) { return op(new Op.Full(Shape.of(dims), t, value)); }

    ValueRef op(Op op, ValueRef... args) { return b.apply(op, List.of(args)).get(0); }

    List<ValueRef> ops(Op op, ValueRef... args) { return b.apply(op, List.of(args)); }

    ValueRef unary(UnaryFn fn, ValueRef x) { return op(new Op.Unary(fn), x); }

    ValueRef binary(BinaryFn fn, ValueRef x, ValueRef y) { return op(new Op.Binary(fn), x, y); }

    /** {@code x fn s} with a float (non-integral) scalar. */
    ValueRef scalar(BinaryFn fn, ValueRef x, double s) { return op(new Op.BinaryScalar(fn, s, false, false), x); }

    Graph build(ValueRef... outputs) { return b.build(List.of(outputs)); }
}
