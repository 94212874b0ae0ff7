package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConstantFoldingTest {
    private final ConstantFolding fold = new ConstantFolding();

    @Test
    void foldsAChainOfConstantsWithBroadcasting() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 4, 3);
        ValueRef sum = t.binary(BinaryFn.ADD, t.full(2, DType.FLOAT32, 1), t.full(3, DType.FLOAT32, 4, 3));
        ValueRef c = t.unary(UnaryFn.NEG, t.scalar(BinaryFn.MUL, sum, 0.5));
        Graph g = t.build(t.binary(BinaryFn.ADD, x, c));

        PassResult r = fold.run(g);
        assertEquals("""
                value   op                                            args    type
                %0      input 0                                               float32[4,3]
                %1      full(shape=[1], dtype=float32, value=2.0)             float32[1]
                %2      full(shape=[4,3], dtype=float32, value=3.0)           float32[4,3]
                %3      full(shape=[4,3], dtype=float32, value=5.0)           float32[4,3]
                %4      full(shape=[4,3], dtype=float32, value=2.5)           float32[4,3]
                %5      full(shape=[4,3], dtype=float32, value=-2.5)          float32[4,3]
                %6      add                                           %0, %5  float32[4,3]
                return                                                %6
                """, r.graph().toTable());
        assertEquals("folded 3 nodes", r.summary());
        assertEquals(List.of("%3 = add(%1, %2) -> full(5.0)", "%4 = mul(%3) -> full(2.5)", "%5 = neg(%4) -> full(-2.5)"),
                r.details());
        assertSameResults(g, r.graph());
    }

    @Test
    void roundsToTheResultDtypeAsAStoreDoes() {
        assertEquals((double) (0.1f * 3f), foldedValue(t -> t.scalar(BinaryFn.MUL, t.full(0.1, DType.FLOAT32), 3)));
        assertEquals(Float.float16ToFloat(Float.floatToFloat16(1f / 3f)),
                foldedValue(t -> t.scalar(BinaryFn.DIV, t.full(1, DType.FLOAT16), 3)));
        assertEquals(Elements.bf16ToFloat(Elements.floatToBf16(1f / 3f)),
                foldedValue(t -> t.scalar(BinaryFn.DIV, t.full(1, DType.BFLOAT16), 3)));
        // float16 operands compute in float32 and round once, on store: 2049 is not a float16, 2048 + 1 rounds to even.
        assertEquals(2048.0, foldedValue(t -> t.binary(BinaryFn.ADD, t.full(2048, DType.FLOAT16), t.full(1, DType.FLOAT16))));
        // A float scalar is rounded to a float16 compute type first, as the kernel does: 1 + 1e-4 is 1 in float16.
        assertEquals(1.0, foldedValue(t -> t.scalar(BinaryFn.ADD, t.full(1, DType.FLOAT16), 1e-4)));
        assertEquals((double) (float) Math.exp(1), foldedValue(t -> t.unary(UnaryFn.EXP, t.full(1, DType.FLOAT32))));
        assertEquals(Math.exp(1), foldedValue(t -> t.unary(UnaryFn.EXP, t.full(1, DType.FLOAT64))));
    }

    @Test
    void convertsAndWrapsIntegersAsTheKernelsDo() {
        assertEquals(2.0, foldedValue(t -> t.op(new Op.Cast(DType.INT32), t.full(2.7, DType.FLOAT32))));
        assertEquals(-2.0, foldedValue(t -> t.op(new Op.Cast(DType.INT64), t.full(-2.7, DType.FLOAT64))));
        assertEquals(1.0, foldedValue(t -> t.op(new Op.Cast(DType.BOOL), t.full(Double.NaN, DType.FLOAT32))));
        assertEquals(0.0, foldedValue(t -> t.op(new Op.Cast(DType.INT32), t.full(Double.NaN, DType.FLOAT32))));
        assertEquals(Integer.MIN_VALUE, foldedValue(t -> t.op(new Op.BinaryScalar(BinaryFn.ADD, 1, true, false),
                t.full(Integer.MAX_VALUE, DType.INT32))));
        assertEquals(-3.0, foldedValue(t -> t.op(new Op.BinaryScalar(BinaryFn.FLOOR_DIV, 2, true, false), t.full(-5, DType.INT64))));
        assertEquals(-2.0, foldedValue(t -> t.op(new Op.BinaryScalar(BinaryFn.TRUNC_DIV, 2, true, false), t.full(-5, DType.INT64))));
        assertEquals(-2.5, foldedValue(t -> t.op(new Op.BinaryScalar(BinaryFn.DIV, 2, true, false), t.full(-5, DType.INT64))));
        // Integer clamp bounds round inward: clamp(x, 0.5, 2.5) is clamp(x, 1, 2).
        assertEquals(2.0, foldedValue(t -> t.op(new Op.Clamp(0.5, 2.5), t.full(7, DType.INT32))));
        assertEquals(1.0, foldedValue(t -> t.op(new Op.Clamp(0.5, 2.5), t.full(-7, DType.INT32))));
        assertEquals(1.0, foldedValue(t -> t.binary(BinaryFn.ADD, t.full(1, DType.BOOL), t.full(1, DType.BOOL))));
    }

    @Test
    void leavesWhatItCannotKnowExactly() {
        // int32 fills from doubles saturate in the kernel but wrap through long in Elements: the value is not known.
        assertNotFolded(t -> t.op(new Op.BinaryScalar(BinaryFn.ADD, 1, true, false), t.full(3e9, DType.INT32)));
        assertNotFolded(t -> t.op(new Op.Cast(DType.INT32), t.full(3e9, DType.FLOAT32)));
        // 2^53 + 1 is an int64 no double (so no Full) holds.
        assertNotFolded(t -> t.op(new Op.BinaryScalar(BinaryFn.ADD, 1, true, false), t.full(0x1p53, DType.INT64)));
    }

    @Test
    void leavesOpsThatFailAtRunTimeSoThatTheyStillFail() {
        for (Graph g : List.of(
                graph(t -> t.op(new Op.BinaryScalar(BinaryFn.FLOOR_DIV, 0, true, false), t.full(5, DType.INT32))),
                graph(t -> t.binary(BinaryFn.TRUNC_DIV, t.full(5, DType.INT64), t.full(0, DType.INT64))),
                graph(t -> t.binary(BinaryFn.POW, t.full(2, DType.INT64), t.full(-1, DType.INT64))),
                graph(t -> t.op(new Op.Clamp(Double.NaN, 1), t.full(5, DType.INT32))),
                graph(t -> t.op(new Op.Clamp(Double.NaN, 1), t.full(5, DType.INT32, 0, 3))))) {
            PassResult r = fold.run(g);
            assertEquals(g, r.graph(), g.toTable());
            KilnException e = assertThrows(KilnException.class, () -> GraphRuns.run(r.graph(), new Tensor[0]));
            assertTrue(e.getMessage().contains("division by zero") || e.getMessage().contains("negative integer powers")
                    || e.getMessage().contains("bound NaN"), e.getMessage());
        }
    }

    @Test
    void emptyResultsFoldWithoutComputingAnElement() {
        Graph g = graph(t -> t.binary(BinaryFn.TRUNC_DIV, t.full(5, DType.INT32, 0, 3), t.full(0, DType.INT32, 3)));
        Graph out = fold.run(g).graph();
        assertEquals(new Op.Full(Shape.of(0, 3), DType.INT32, 0), op(out, out.outputs().get(0)));
        assertSameResults(g, out);
    }

    @Test
    void viewsAndCopiesOfAFullAreFullsOfTheNewShape() {
        TestGraph t = new TestGraph();
        ValueRef c = t.full(-1.5, DType.FLOAT16, 2, 1, 3);
        Graph g = t.build(
                t.op(new Op.Reshape(Shape.of(3, 2)), c),
                t.op(new Op.Expand(Shape.of(4, 2, 5, 3)), c),
                t.op(new Op.Permute(List.of(2, 0, 1)), c),
                t.op(new Op.Slice(2, 2, -2, 2), c),
                t.op(new Op.Diagonal(0, 2), c),
                t.op(new Op.Contiguous(), c));
        PassResult r = fold.run(g);
        assertEquals("folded 6 nodes", r.summary());
        List<Shape> shapes = List.of(Shape.of(3, 2), Shape.of(4, 2, 5, 3), Shape.of(3, 2, 1), Shape.of(2, 1, 2),
                Shape.of(1, 2), Shape.of(2, 1, 3));
        for (int i = 0; i < shapes.size(); i++) {
            assertEquals(new Op.Full(shapes.get(i), DType.FLOAT16, -1.5), op(r.graph(), r.graph().outputs().get(i)));
        }
        assertSameResults(g, r.graph());
    }

    @Test
    void leavesNonUniformConstantsAndGraphInputsAlone() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 4);
        ValueRef range = t.op(new Op.Arange(0, 1, 4, DType.FLOAT32));
        ValueRef c = t.full(2, DType.FLOAT32, 4);
        Graph g = t.build(t.binary(BinaryFn.MUL, range, c), t.binary(BinaryFn.MUL, x, c), t.op(new Op.Reduce(
                dev.kiln.ops.ReduceFn.SUM, List.of(0), false), c));
        PassResult r = fold.run(g);
        assertEquals(g, r.graph());
        assertEquals("no change", r.summary());
    }

    // ---------------------------------------------------------------- helpers

    private interface Body {
        ValueRef build(TestGraph t);
    }

    private static Graph graph(Body body) {
        TestGraph t = new TestGraph();
        return t.build(body.build(t));
    }

    private static Op op(Graph g, ValueRef v) {
        return ((Node.Apply) g.node(v.node())).op();
    }

    /** The value of the Full the body's result folds to; also checks it against the kernels. */
    private double foldedValue(Body body) {
        Graph g = graph(body);
        Graph out = fold.run(g).graph();
        assertSameResults(g, out);
        if (!(op(out, out.outputs().get(0)) instanceof Op.Full f)) throw new AssertionError("not folded:\n" + out.toTable());
        return f.value();
    }

    private void assertNotFolded(Body body) {
        Graph g = graph(body);
        assertEquals(g, fold.run(g).graph(), g.toTable());
    }

    private static void assertSameResults(Graph g, Graph folded) {
        Tensor[] in = GraphRuns.randomInputs(g, 1);
        Tensor[] expected = GraphRuns.run(g, in), actual = GraphRuns.run(folded, in);
        for (int i = 0; i < expected.length; i++) GraphRuns.assertSameValues(expected[i], actual[i], 0, folded.toTable());
    }
}
