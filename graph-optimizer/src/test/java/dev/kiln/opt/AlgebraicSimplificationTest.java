package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class AlgebraicSimplificationTest {
    private final AlgebraicSimplification simplify = new AlgebraicSimplification();

    @Test
    void arithmeticIdentitiesReturnTheirOperand() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 3);
        ValueRef one = t.full(1, DType.FLOAT32, 2, 3);
        ValueRef negativeZero = t.full(-0.0, DType.FLOAT32, 3);
        Graph g = t.build(
                t.scalar(BinaryFn.MUL, x, 1),
                t.binary(BinaryFn.MUL, one, x),
                t.scalar(BinaryFn.DIV, x, 1),
                t.scalar(BinaryFn.POW, x, 1),
                t.scalar(BinaryFn.SUB, x, 0.0),
                t.scalar(BinaryFn.ADD, x, -0.0),
                t.binary(BinaryFn.ADD, negativeZero, x));
        PassResult r = simplify.run(g);
        assertEquals("""
                value   op                                           args                        type
                %0      input 0                                                                  float32[2,3]
                %1      full(shape=[2,3], dtype=float32, value=1.0)                              float32[2,3]
                %2      full(shape=[3], dtype=float32, value=-0.0)                               float32[3]
                return                                               %0, %0, %0, %0, %0, %0, %0
                """, r.graph().toTable());
        assertEquals("simplified 7 nodes", r.summary());
        assertEquals(List.of("%3 = mul(%0): x * 1 is x", "%4 = mul(%1, %0): 1 * x is x", "%5 = div(%0): x / 1 is x",
                "%6 = pow(%0): x ** 1 is x", "%7 = sub(%0): x - 0 is x", "%8 = add(%0): x + -0.0 is x",
                "%9 = add(%2, %0): -0.0 + x is x"), r.details());
        assertSameResults(g, r.graph());
    }

    @Test
    void integerIdentitiesIncludeAddingZero() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.INT32, 4);
        Graph g = t.build(t.op(new Op.BinaryScalar(BinaryFn.ADD, 0, true, false), x),
                t.binary(BinaryFn.ADD, t.full(0, DType.INT32, 4), x),
                t.op(new Op.BinaryScalar(BinaryFn.MUL, 1, true, true), x),
                t.op(new Op.BinaryScalar(BinaryFn.POW, 1, true, false), x));
        PassResult r = simplify.run(g);
        assertEquals(List.of(x, x, x, x), r.graph().outputs());
        assertSameResults(g, r.graph());
    }

    @Test
    void broadcastingOrPromotionBlocksTheRewrite() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.INT32, 3);
        ValueRef f = t.input(DType.FLOAT32, 3);
        ValueRef h = t.input(DType.FLOAT16, 3);
        Graph g = t.build(
                t.binary(BinaryFn.ADD, x, t.full(0, DType.INT32, 4, 3)),    // broadcasts x[3] to [4,3]
                t.binary(BinaryFn.SUB, f, t.full(0, DType.FLOAT32, 4, 3)),  // likewise for floats
                t.binary(BinaryFn.ADD, x, t.full(0, DType.INT64, 3)),       // promotes int32 to int64
                t.scalar(BinaryFn.ADD, x, 0.0),                             // a float scalar makes int32 float32
                t.scalar(BinaryFn.DIV, x, 1),                               // true division of ints is float32
                t.binary(BinaryFn.MUL, h, t.full(1, DType.FLOAT32, 3)));    // promotes float16 to float32
        PassResult r = simplify.run(g);
        assertEquals(g, r.graph());
        assertEquals("no change", r.summary());
    }

    /** Each of these would change some result: the NaN, infinity and signed-zero cases. */
    @Test
    void keepsRewritesThatAreNotExactForEveryInput() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 4);
        Graph g = t.build(
                t.scalar(BinaryFn.MUL, x, 0),                            // NaN * 0 and inf * 0 are NaN, -1 * 0 is -0
                t.binary(BinaryFn.SUB, x, x),                            // NaN - NaN and inf - inf are NaN
                t.scalar(BinaryFn.ADD, x, 0.0),                          // -0.0 + 0.0 is +0.0
                t.binary(BinaryFn.ADD, t.full(0, DType.FLOAT32, 4), x),  // likewise
                t.scalar(BinaryFn.SUB, x, -0.0),                         // -0.0 - -0.0 is +0.0
                t.op(new Op.BinaryScalar(BinaryFn.SUB, 0, false, true), x),  // 0 - x is -x, not x
                t.op(new Op.BinaryScalar(BinaryFn.DIV, 1, false, true), x),  // 1 / x
                t.op(new Op.BinaryScalar(BinaryFn.POW, 1, false, true), x)); // 1 ** x
        assertEquals(g, simplify.run(g).graph());
        Tensor in = Tensor.vector(Float.NaN, Float.POSITIVE_INFINITY, -0f, -1f);
        Tensor[] out = GraphRuns.run(g, new Tensor[] {in});
        assertEquals("[NaN, NaN, -0.0, -0.0]", java.util.Arrays.toString(out[0].toFloatArray()));
        assertEquals("[NaN, NaN, 0.0, 0.0]", java.util.Arrays.toString(out[1].toFloatArray()));
        assertEquals("[NaN, Infinity, 0.0, -1.0]", java.util.Arrays.toString(out[2].toFloatArray()));
        assertEquals("[NaN, Infinity, 0.0, -1.0]", java.util.Arrays.toString(out[4].toFloatArray()));
    }

    @Test
    void doubleNegationCancels() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.INT32, 3);
        ValueRef n1 = t.unary(UnaryFn.NEG, x);
        ValueRef n2 = t.unary(UnaryFn.NEG, n1);
        ValueRef n3 = t.unary(UnaryFn.NEG, n2);
        Graph g = t.build(n2, n3);
        PassResult r = simplify.run(g);
        assertEquals("""
                value   op       args    type
                %0      input 0          int32[3]
                %1      neg      %0      int32[3]
                %2      neg      %0      int32[3]
                return           %0, %2
                """, r.graph().toTable());
        assertEquals(List.of("%2 = neg(%1): neg(neg(x)) is x"), r.details());
        assertSameResults(g, r.graph());
    }

    @Test
    void castsAndCopiesThatChangeNothing() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 3);
        ValueRef e = t.unary(UnaryFn.EXP, x);
        ValueRef view = t.op(new Op.Permute(List.of(1, 0)), e);
        Graph g = t.build(
                t.op(new Op.Cast(DType.FLOAT32), x),
                t.op(new Op.Cast(DType.FLOAT64), x),
                t.op(new Op.Contiguous(), e),      // exp's output is fresh and contiguous
                t.op(new Op.Contiguous(), view),   // a transposed view: the copy stays
                t.op(new Op.Contiguous(), x));     // a graph input may be any view: the copy stays
        PassResult r = simplify.run(g);
        assertEquals(List.of("%3 = to_float32(%0): cast to the same dtype",
                "%5 = contiguous(%1): contiguous of a fresh (contiguous) value"), r.details());
        assertEquals(List.of(x, new ValueRef(3, 0), e, new ValueRef(4, 0), new ValueRef(5, 0)), r.graph().outputs());
        assertSameResults(g, r.graph());
    }

    @Test
    void reshapesAndExpandsToTheSameShapeDisappearAndReshapesCompose() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 3);
        ValueRef flat = t.op(new Op.Reshape(Shape.of(6)), x);
        Graph g = t.build(
                t.op(new Op.Reshape(Shape.of(2, 3)), x),
                t.op(new Op.Reshape(Shape.of(3, 2)), flat),
                t.op(new Op.Reshape(Shape.of(2, 3)), flat),
                t.op(new Op.Expand(Shape.of(2, 3)), x),
                t.op(new Op.Expand(Shape.of(4, 2, 3)), x));
        PassResult r = simplify.run(g);
        assertEquals("""
                value   op                     args                type
                %0      input 0                                    float32[2,3]
                %1      reshape(shape=[6])     %0                  float32[6]
                %2      reshape(shape=[3,2])   %0                  float32[3,2]
                %3      expand(shape=[4,2,3])  %0                  float32[4,2,3]
                return                         %0, %2, %0, %0, %3
                """, r.graph().toTable());
        assertEquals(List.of("%2 = reshape(%0): reshape to the same shape", "%3 = reshape(%1): reshape of reshape is one reshape",
                "%4 = reshape(%1): reshape of reshape back to the original shape", "%5 = expand(%0): expand to the same shape"),
                r.details());
        assertSameResults(g, r.graph());
    }

    @Test
    void permutesCompose() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 3, 4);
        ValueRef p = t.op(new Op.Permute(List.of(2, 0, 1)), x);   // [4,2,3]
        Graph g = t.build(
                t.op(new Op.Permute(List.of(0, 2, 1)), p),          // [4,3,2]: dims 2, 1, 0 of x
                t.op(new Op.Permute(List.of(1, 2, 0)), p),          // back to x
                t.op(new Op.Permute(List.of(0, 1, 2)), x));         // keeps every dimension
        PassResult r = simplify.run(g);
        assertEquals("""
                value   op                     args        type
                %0      input 0                            float32[2,3,4]
                %1      permute(dims=[2,0,1])  %0          float32[4,2,3]
                %2      permute(dims=[2,1,0])  %0          float32[4,3,2]
                return                         %2, %0, %0
                """, r.graph().toTable());
        assertEquals(List.of("%2 = permute(%1): permute of permute is one permute [2, 1, 0]",
                "%3 = permute(%1): permute of permute is the identity", "%4 = permute(%0): permute keeping every dimension in place"),
                r.details());
        assertSameResults(g, r.graph());
    }

    @Test
    void onlyAWholeDimensionSliceWithStepOneIsTheIdentity() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 3);
        Graph g = t.build(
                t.op(new Op.Slice(1, 0, 1, 3), x),
                t.op(new Op.Slice(1, 2, -1, 3), x),   // reversed
                t.op(new Op.Slice(1, 0, 1, 2), x));   // a part
        PassResult r = simplify.run(g);
        assertEquals(List.of("%1 = slice(%0): slice of the whole dimension 1"), r.details());
        assertEquals(x, r.graph().outputs().get(0));
        assertSameResults(g, r.graph());
    }

    private static void assertSameResults(Graph g, Graph simplified) {
        for (int draw = 0; draw < 3; draw++) {
            Tensor[] in = GraphRuns.randomInputs(g, draw);
            Tensor[] expected = GraphRuns.run(g, in), actual = GraphRuns.run(simplified, in);
            for (int i = 0; i < expected.length; i++) GraphRuns.assertSameValues(expected[i], actual[i], 0, simplified.toTable());
        }
    }
}
