package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class CommonSubexpressionEliminationTest {
    private final CommonSubexpressionElimination cse = new CommonSubexpressionElimination();

    @Test
    void mergesRepeatedChainsInOnePass() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 3);
        ValueRef a1 = t.unary(UnaryFn.TANH, x);
        ValueRef b1 = t.scalar(BinaryFn.MUL, a1, 2);
        ValueRef a2 = t.unary(UnaryFn.TANH, x);
        ValueRef b2 = t.scalar(BinaryFn.MUL, a2, 2);
        Graph g = t.build(t.binary(BinaryFn.ADD, b1, b2));

        PassResult r = cse.run(g);
        assertEquals("""
                value   op                                                        args    type
                %0      input 0                                                           float32[3]
                %1      tanh                                                      %0      float32[3]
                %2      mul(scalar=2.0, integralScalar=false, scalarFirst=false)  %1      float32[3]
                %3      add                                                       %2, %2  float32[3]
                return                                                            %3
                """, r.graph().toTable());
        assertEquals("merged 2 nodes", r.summary());
        assertEquals(List.of("%3 (tanh) repeats %1", "%4 (mul) repeats %2"), r.details());
    }

    @Test
    void mergesEqualConstants() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 3);
        ValueRef c1 = t.full(0.5, DType.FLOAT32, 3);
        ValueRef c2 = t.full(0.5, DType.FLOAT32, 3);
        Graph g = t.build(t.binary(BinaryFn.SUB, t.binary(BinaryFn.MUL, x, c1), c2));
        PassResult r = cse.run(g);
        assertEquals(List.of("%2 (full) repeats %1"), r.details());
        assertEquals("""
                value   op                                         args    type
                %0      input 0                                            float32[3]
                %1      full(shape=[3], dtype=float32, value=0.5)          float32[3]
                %2      mul                                        %0, %1  float32[3]
                %3      sub                                        %2, %1  float32[3]
                return                                             %3
                """, r.graph().toTable());
    }

    @Test
    void keepsOpsThatDifferInAnyAttributeOrOperandOrder() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 3);
        ValueRef y = t.input(DType.FLOAT32, 3);
        Graph g = t.build(
                t.scalar(BinaryFn.ADD, x, 0.0), t.scalar(BinaryFn.ADD, x, -0.0),     // +0.0 and -0.0 differ
                t.op(new Op.BinaryScalar(BinaryFn.SUB, 1, false, true), x),           // 1 - x
                t.op(new Op.BinaryScalar(BinaryFn.SUB, 1, false, false), x),          // x - 1
                t.binary(BinaryFn.MUL, x, y), t.binary(BinaryFn.MUL, y, x),           // not matched up to commutation
                t.full(1, DType.FLOAT32, 3), t.full(1, DType.FLOAT64, 3),             // dtypes differ
                t.op(new Op.Reduce(dev.kiln.ops.ReduceFn.SUM, List.of(0), true), x),
                t.op(new Op.Reduce(dev.kiln.ops.ReduceFn.SUM, List.of(0), false), x));
        PassResult r = cse.run(g);
        assertEquals(g, r.graph());
        assertEquals("no change", r.summary());
    }

    @Test
    void mergesMultiOutputNodesWhole() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 5);
        List<ValueRef> first = t.ops(new Op.TopK(2, 1, true, true), x);
        List<ValueRef> second = t.ops(new Op.TopK(2, 1, true, true), x);
        Graph g = t.build(first.get(0), second.get(1));
        Graph out = cse.run(g).graph();
        assertEquals("""
                value   op                                           args      type
                %0      input 0                                                float32[2,5]
                %1      topk(k=2, dim=1, largest=true, sorted=true)  %0        float32[2,2], int64[2,2]
                return                                               %1, %1.1
                """, out.toTable());
    }
}
