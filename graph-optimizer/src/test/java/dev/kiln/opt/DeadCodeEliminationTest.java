package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

class DeadCodeEliminationTest {
    private final DeadCodeElimination dce = new DeadCodeElimination();

    @Test
    void removesBranchesNoOutputUsesAndKeepsEveryInput() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 3);
        ValueRef unusedInput = t.input(DType.INT32, 2);
        ValueRef deadExp = t.unary(UnaryFn.EXP, x);
        t.binary(BinaryFn.MUL, deadExp, deadExp);
        ValueRef y = t.unary(UnaryFn.NEG, x);
        t.unary(UnaryFn.ABS, unusedInput);
        Graph g = t.build(y);
        assertEquals("""
                value   op       args    type
                %0      input 0          float32[3]
                %1      input 1          int32[2]
                %2      exp      %0      float32[3]
                %3      mul      %2, %2  float32[3]
                %4      neg      %0      float32[3]
                %5      abs      %1      int32[2]
                return           %4
                """, g.toTable());

        PassResult r = dce.run(g);
        assertEquals("""
                value   op       args  type
                %0      input 0        float32[3]
                %1      input 1        int32[2]
                %2      neg      %0    float32[3]
                return           %2
                """, r.graph().toTable());
        assertEquals("removed 3 nodes", r.summary());
        assertEquals(List.of("%2 (exp) is unused", "%3 (mul) is unused", "%5 (abs) is unused"), r.details());
    }

    @Test
    void keepsInputIndicesWhenInputsComeBetweenOps() {
        TestGraph t = new TestGraph();
        ValueRef a = t.input(DType.FLOAT32, 2);
        t.unary(UnaryFn.EXP, a);
        ValueRef b = t.input(DType.FLOAT32, 2);
        Graph g = t.build(b, a);
        Graph out = dce.run(g).graph();
        assertEquals("""
                value   op       args    type
                %0      input 0          float32[2]
                %1      input 1          float32[2]
                return           %1, %0
                """, out.toTable());
        Tensor x = Tensor.vector(1, 2), y = Tensor.vector(3, 4);
        Tensor[] res = GraphRuns.run(out, new Tensor[] {x, y});
        assertSame(y, res[0]);
        assertSame(x, res[1]);
    }

    @Test
    void keepsANodeWhileAnyOfItsOutputsIsUsed() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 4);
        List<ValueRef> ln = t.ops(new Op.LayerNorm(1, 1e-5, false, false), x);
        Graph g = t.build(ln.get(2));
        PassResult r = dce.run(g);
        assertEquals(g, r.graph());
        assertEquals("no change", r.summary());
        assertEquals(List.of(), r.details());
    }

    @Test
    void aGraphReturningOnlyAnInputLosesEveryOp() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.INT64, 3);
        ValueRef c = t.full(2, DType.INT64, 3);
        t.binary(BinaryFn.ADD, x, c);
        PassResult r = dce.run(t.build(x));
        assertEquals(1, r.graph().nodes().size());
        assertEquals("removed 2 nodes", r.summary());
    }
}
