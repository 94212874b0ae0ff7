package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class FusePointwiseTest {
    private static final TensorMeta F4x8 = new TensorMeta(DType.FLOAT32, Shape.of(4, 8));

    private static ValueRef un(GraphBuilder b, UnaryFn fn, ValueRef x) { return b.apply(new Op.Unary(fn), List.of(x)).get(0); }

    private static ValueRef bin(GraphBuilder b, BinaryFn fn, ValueRef x, ValueRef y) {
        return b.apply(new Op.Binary(fn), List.of(x, y)).get(0);
    }

    private static List<String> listing(Graph g) { return FusePointwise.groups(g).stream().map(Object::toString).toList(); }

    @Test
    void w1IsOneGroupWithItsScalarsAsInputs() {
        assertEquals(List.of("[%3 %4 %5 %6 %7 %8] in (%0, %1, %2) out (%8)"), listing(NpuBackendTest.w1Graph(16)));
    }

    @Test
    void aNonFusibleOpSplitsChainsAndSharedValuesBecomeOutputs() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(F4x8);                                               // %0
        ValueRef e = un(b, UnaryFn.EXP, x);                                       // %1
        ValueRef s = b.apply(new Op.Softmax(1, false), List.of(e)).get(0);        // %2 not fusible
        ValueRef t = bin(b, BinaryFn.MUL, s, e);                                  // %3
        ValueRef u = un(b, UnaryFn.TANH, t);                                      // %4
        Graph g = b.build(List.of(u));
        // Before: every pointwise node on its own; after: %1 cannot join %3/%4 (the path %1 -> %2 -> %3 leaves the group).
        assertEquals(List.of("[%1] in (%0) out (%1)", "[%3 %4] in (%2, %1) out (%4)"), listing(g));
    }

    @Test
    void broadcastOperandsFuseAndNonFloatResultsDoNot() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(F4x8);                                                       // %0
        ValueRef row = b.input(new TensorMeta(DType.FLOAT32, Shape.of(1, 8)));            // %1
        ValueRef a = un(b, UnaryFn.RELU, x);                                              // %2
        ValueRef c = bin(b, BinaryFn.ADD, a, row);                                        // %3 [1,8] read broadcast
        ValueRef d = b.apply(new Op.BinaryScalar(BinaryFn.POW, 2, true, false), List.of(c)).get(0); // %4
        ValueRef f = b.apply(new Op.Cast(DType.FLOAT64), List.of(d)).get(0);              // %5 not float32
        Graph g = b.build(List.of(f));
        assertEquals(List.of("[%2 %3 %4] in (%0, %1) out (%4)"), listing(g));
    }

    @Test
    void aBroadcastOperandComputedInTheGraphIsItsOwnGroup() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(F4x8);                                                       // %0
        ValueRef column = b.input(new TensorMeta(DType.FLOAT32, Shape.of(4, 1)));         // %1
        ValueRef e = un(b, UnaryFn.EXP, column);                                          // %2 [4,1]
        ValueRef m = bin(b, BinaryFn.MUL, x, e);                                          // %3 [4,8]
        ValueRef t = un(b, UnaryFn.TANH, m);                                              // %4
        Graph g = b.build(List.of(t));
        // Groups have one shape: the [4,1] value is computed once, then read through a stride of 0.
        assertEquals(List.of("[%2] in (%1) out (%2)", "[%3 %4] in (%0, %2) out (%4)"), listing(g));
    }

    /** x [4,8] times (3 column + 3 column) [4,1], then tanh; also returning the [4,1] value when {@code returnColumn}. */
    private static Graph scaledByColumn(boolean returnColumn) {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(F4x8);                                                       // %0
        ValueRef column = b.input(new TensorMeta(DType.FLOAT32, Shape.of(4, 1)));         // %1
        ValueRef scaled = b.apply(new Op.BinaryScalar(BinaryFn.MUL, 3, false, false), List.of(column)).get(0); // %2 [4,1]
        ValueRef doubled = bin(b, BinaryFn.ADD, scaled, scaled);                          // %3 [4,1]
        ValueRef t = un(b, UnaryFn.TANH, bin(b, BinaryFn.MUL, x, doubled));               // %4 %5 [4,8]
        return b.build(returnColumn ? List.of(t, doubled) : List.of(t));
    }

    @Test
    void aCheapSmallerProducerIsRecomputedOnlyWhenNothingElseReadsIt() {
        assertEquals(List.of("[%2 %3 %4 %5] in (%1, %0) out (%5)"), listing(scaledByColumn(false)));
        // The [4,1] value also returned: computed once, on its own.
        assertEquals(List.of("[%2 %3] in (%1) out (%3)", "[%4 %5] in (%0, %3) out (%5)"), listing(scaledByColumn(true)));
    }

    @Test
    void castsToFloat32FromAnyDtypeFuseTheirInputsConvertedAsLoaded() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(F4x8);                                                        // %0
        ValueRef mask = b.input(new TensorMeta(DType.BOOL, Shape.of(4, 8)));               // %1
        ValueRef idx = b.input(new TensorMeta(DType.INT64, Shape.of(4, 8)));               // %2
        ValueRef half = b.input(new TensorMeta(DType.FLOAT16, Shape.of(8)));               // %3
        ValueRef m = b.apply(new Op.Cast(DType.FLOAT32), List.of(mask)).get(0);            // %4
        ValueRef i = b.apply(new Op.Cast(DType.FLOAT32), List.of(idx)).get(0);             // %5
        ValueRef h = b.apply(new Op.Cast(DType.FLOAT32), List.of(half)).get(0);            // %6 [8]: recomputed per element
        ValueRef y = bin(b, BinaryFn.ADD, bin(b, BinaryFn.ADD, bin(b, BinaryFn.MUL, x, m), i), h); // %7 %8 %9
        ValueRef n = b.apply(new Op.Cast(DType.INT32), List.of(y)).get(0);                 // %10 not to float32
        Graph g = b.build(List.of(n));
        assertEquals(List.of("[%4 %5 %6 %7 %8 %9] in (%1, %2, %3, %0) out (%9)"), listing(g));
    }

    @Test
    void whereWithABoolConditionFusesAndComparisonsDoNot() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(F4x8);                                                        // %0
        ValueRef y = b.input(F4x8);                                                        // %1
        ValueRef gt = b.apply(new Op.BinaryScalar(BinaryFn.GT, 0, false, false), List.of(x)).get(0); // %2 bool
        ValueRef ny = un(b, UnaryFn.NEG, y);                                               // %3
        ValueRef w = b.apply(new Op.Where(), List.of(gt, x, ny)).get(0);                   // %4
        ValueRef c = b.apply(new Op.Clamp(-1, 1), List.of(w)).get(0);                      // %5
        ValueRef k = b.apply(new Op.Cast(DType.FLOAT32), List.of(c)).get(0);               // %6
        Graph g = b.build(List.of(k, ny));
        assertEquals(List.of("[%3 %4 %5 %6] in (%1, %2, %0) out (%3, %6)"), listing(g));
    }
}
