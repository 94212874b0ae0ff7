package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FormAttentionTest {
    private static final int L = 6, S = 9, E = 8, EV = 5;
    private static final double NEG_INF = Double.NEGATIVE_INFINITY;

    /** q [2,3,L,E], k [2,3,S,E], v [2,3,S,EV] as inputs 0..2. */
    private static final class Attn {
        final TestGraph t = new TestGraph();
        final ValueRef q = t.input(DType.FLOAT32, 2, 3, L, E), k = t.input(DType.FLOAT32, 2, 3, S, E), v = t.input(DType.FLOAT32, 2, 3, S, EV);

        ValueRef scores(double scale) {
            ValueRef kT = t.op(new Op.Permute(List.of(0, 1, 3, 2)), k);
            return t.scalar(BinaryFn.MUL, t.op(new Op.MatMul(), q, kT), scale);
        }

        Graph finish(ValueRef masked) {
            return t.build(t.op(new Op.MatMul(), t.op(new Op.Softmax(3, false), masked), v));
        }
    }

    private static Graph optimise(Graph g) {
        return Pipeline.standard().run(g).graph();
    }

    private static Op.ScaledDotProductAttention attention(Graph g) {
        List<Op.ScaledDotProductAttention> found = g.nodes().stream().filter(n -> n instanceof Node.Apply ap
                && ap.op() instanceof Op.ScaledDotProductAttention).map(n -> (Op.ScaledDotProductAttention) ((Node.Apply) n).op()).toList();
        assertEquals(1, found.size(), g.toTable());
        assertTrue(g.nodes().stream().noneMatch(n -> n instanceof Node.Apply ap && ap.op() instanceof Op.Softmax), g.toTable());
        return found.get(0);
    }

    private static Tensor[] inputs(Graph g, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        return g.inputMetas().stream().map(m -> m.dtype() == DType.BOOL ? randomMask(r, m.shape()) : Tensor.randn(r.nextLong(), m.shape().dims()))
                .toArray(Tensor[]::new);
    }

    /** A bool mask with a fully masked row in every plane (row 1) and random keys elsewhere. */
    private static Tensor randomMask(SplittableRandom r, Shape shape) {
        boolean[] keep = new boolean[(int) shape.numel()];
        int cols = shape.dim(-1), rows = shape.dim(-2);
        for (int i = 0; i < keep.length; i++) keep[i] = (i / cols) % rows != 1 && r.nextInt(3) != 0;
        return Tensor.of(keep, shape.dims());
    }

    /** Same NaNs, other values within float32 rounding of a different summation order. */
    private static void assertClose(Tensor expected, Tensor actual) {
        assertEquals(expected.shape(), actual.shape());
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        for (int i = 0; i < e.length; i++) {
            assertEquals(Double.isNaN(e[i]), Double.isNaN(a[i]), "element " + i + ": " + e[i] + " vs " + a[i]);
            if (!Double.isNaN(e[i])) assertEquals(e[i], a[i], 2e-5 * (1 + Math.abs(e[i])), "element " + i);
        }
    }

    private static void assertSameResults(Graph before, Graph after) {
        for (long seed = 0; seed < 3; seed++) {
            Tensor[] in = inputs(before, seed);
            assertClose(GraphRuns.run(before, in)[0], GraphRuns.run(after, in)[0]);
        }
    }

    @Test
    void unmaskedScaledPatternBecomesOneAttentionOp() {
        Attn a = new Attn();
        Graph g = a.finish(a.scores(0.3));
        Graph out = optimise(g);
        assertEquals(new Op.ScaledDotProductAttention(false, 0.3, false, false), attention(out));
        assertEquals(1, out.opCount(), out.toTable());
        assertSameResults(g, out);
    }

    @Test
    void divisionByAScalarIsTheReciprocalScale() {
        Attn a = new Attn();
        ValueRef kT = a.t.op(new Op.Permute(List.of(0, 1, 3, 2)), a.k);
        Graph g = a.finish(a.t.scalar(BinaryFn.DIV, a.t.op(new Op.MatMul(), a.q, kT), 4));
        Graph out = optimise(g);
        assertEquals(0.25, attention(out).scale());
        assertSameResults(g, out);
    }

    @Test
    void aCausalMaskBuiltFromConstantsBecomesTheKernelsCausalFlag() {
        Attn a = new Attn();
        ValueRef keep = a.t.op(new Op.Triangle(false, 0), a.t.full(1, DType.BOOL, L, S));
        Graph g = a.finish(a.t.op(new Op.Where(), keep, a.scores(0.125), a.t.full(NEG_INF, DType.FLOAT32)));
        Graph out = optimise(g);
        assertEquals(new Op.ScaledDotProductAttention(true, 0.125, false, false), attention(out));
        assertEquals(1, out.opCount(), "the mask's nodes are gone:\n" + out.toTable());
        assertSameResults(g, out);
    }

    @Test
    void aFloatCausalMaskAddedToTheScoresIsCausalToo() {
        Attn a = new Attn();
        ValueRef mask = a.t.op(new Op.Triangle(true, 1), a.t.full(NEG_INF, DType.FLOAT32, L, S));
        Graph g = a.finish(a.t.binary(BinaryFn.ADD, a.scores(0.125), mask));
        Graph out = optimise(g);
        assertTrue(attention(out).causal());
        assertSameResults(g, out);
    }

    @Test
    void aConstantMaskThatIsNotCausalStaysTheMask() {
        Attn a = new Attn();
        // Keys j >= i - 1: every row sees a key, but it is not the causal triangle.
        ValueRef keep = a.t.op(new Op.Triangle(true, -1), a.t.full(1, DType.BOOL, L, S));
        Graph g = a.finish(a.t.op(new Op.Where(), keep, a.scores(0.5), a.t.full(NEG_INF, DType.FLOAT32)));
        Graph out = optimise(g);
        assertEquals(new Op.ScaledDotProductAttention(false, 0.5, false, true), attention(out));
        assertSameResults(g, out);
    }

    @Test
    void aConstantMaskHidingAWholeRowIsLeftAlone() {
        Attn a = new Attn();
        // triu(-inf, 0) masks the diagonal too: row 0 sees nothing, and the pattern gives NaN there.
        ValueRef mask = a.t.op(new Op.Triangle(true, 0), a.t.full(NEG_INF, DType.FLOAT32, L, S));
        Graph g = a.finish(a.t.binary(BinaryFn.ADD, a.scores(0.5), mask));
        assertUnchangedByThePass(g);
    }

    @Test
    void aRunTimeBoolMaskKeepsThePatternsNaNForRowsWithoutVisibleKeys() {
        Attn a = new Attn();
        ValueRef keep = a.t.input(DType.BOOL, 3, L, S);
        Graph g = a.finish(a.t.op(new Op.Where(), keep, a.scores(0.5), a.t.full(NEG_INF, DType.FLOAT32)));
        Graph out = optimise(g);
        assertEquals(new Op.ScaledDotProductAttention(false, 0.5, false, true), attention(out));
        Tensor y = GraphRuns.run(out, inputs(g, 1))[0];
        assertTrue(Double.isNaN(y.getDouble(EV)), "row 1 of plane 0 has no visible key");
        assertSameResults(g, out);
    }

    @Test
    void aMaskThatSaysWhichKeysToDropIsNegated() {
        Attn a = new Attn();
        ValueRef drop = a.t.input(DType.BOOL, L, S);
        Graph g = a.finish(a.t.op(new Op.Where(), drop, a.t.full(NEG_INF, DType.FLOAT32), a.scores(0.5)));
        Graph out = optimise(g);
        assertTrue(attention(out).hasMask());
        assertTrue(out.toTable().contains("logical_not"), out.toTable());
        assertSameResults(g, out);
    }

    @Test
    void keysGivenAlreadyTransposedAreTransposedBack() {
        TestGraph t = new TestGraph();
        ValueRef q = t.input(DType.FLOAT32, L, E), kT = t.input(DType.FLOAT32, E, S), v = t.input(DType.FLOAT32, S, EV);
        Graph g = t.build(t.op(new Op.MatMul(), t.op(new Op.Softmax(1, false), t.op(new Op.MatMul(), q, kT)), v));
        Graph out = optimise(g);
        assertEquals(new Op.ScaledDotProductAttention(false, 1, false, false), attention(out));
        assertSameResults(g, out);
    }

    @Test
    void leftAloneWhenAnIntermediateIsUsedElsewhereOrTheFormDiffers() {
        Attn a = new Attn();
        ValueRef p = a.t.op(new Op.Softmax(3, false), a.scores(0.5));
        assertUnchangedByThePass(a.t.build(a.t.op(new Op.MatMul(), p, a.v), p));

        Attn b = new Attn();
        assertUnchangedByThePass(b.t.build(b.t.op(new Op.MatMul(), b.t.op(new Op.Softmax(3, true), b.scores(0.5)), b.v)));

        Attn c = new Attn();
        ValueRef floatMask = c.t.input(DType.FLOAT32, L, S);
        assertUnchangedByThePass(c.finish(c.t.binary(BinaryFn.ADD, c.scores(0.5), floatMask)));

        TestGraph t = new TestGraph();
        ValueRef q = t.input(DType.FLOAT32, L, E), kT = t.input(DType.FLOAT32, E, L), v = t.input(DType.FLOAT32, L, EV);
        assertUnchangedByThePass(t.build(t.op(new Op.MatMul(), t.op(new Op.Softmax(0, false), t.op(new Op.MatMul(), q, kT)), v)));
    }

    @Test
    void theRewrittenGraphIsAFixedPoint() {
        Attn a = new Attn();
        ValueRef keep = a.t.input(DType.BOOL, L, S);
        Graph out = optimise(a.finish(a.t.op(new Op.Where(), keep, a.scores(0.5), a.t.full(NEG_INF, DType.FLOAT32))));
        PassResult again = new FormAttention().run(out);
        assertEquals("no change", again.summary());
        assertEquals(out, again.graph());
    }

    private static void assertUnchangedByThePass(Graph g) {
        PassResult r = new FormAttention().run(g);
        assertEquals("no change", r.summary());
        assertFalse(r.graph().toTable().contains("scaled_dot_product_attention"), r.graph().toTable());
    }
}
