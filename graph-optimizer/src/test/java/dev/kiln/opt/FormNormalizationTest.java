package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FormNormalizationTest {

    private static ValueRef reduce(TestGraph t, ReduceFn fn, int dim, ValueRef x) {
        return t.op(new Op.Reduce(fn, List.of(dim), true), x);
    }

    /** exp(x - max) / sum over {@code dim}. */
    private static ValueRef stableSoftmax(TestGraph t, ValueRef x, int dim) {
        ValueRef e = t.unary(UnaryFn.EXP, t.binary(BinaryFn.SUB, x, reduce(t, ReduceFn.MAX, dim, x)));
        return t.binary(BinaryFn.DIV, e, reduce(t, ReduceFn.SUM, dim, e));
    }

    private static ValueRef rms(TestGraph t, ValueRef x, double eps, boolean powForm) {
        ValueRef sq = powForm ? t.scalar(BinaryFn.POW, x, 2) : t.binary(BinaryFn.MUL, x, x);
        return t.binary(BinaryFn.MUL, x, t.unary(UnaryFn.RSQRT, t.scalar(BinaryFn.ADD, reduce(t, ReduceFn.MEAN, 2, sq), eps)));
    }

    private static void assertCloseOnRandomInputs(Graph before, Graph after) {
        for (long seed = 0; seed < 3; seed++) {
            long s = seed;
            Tensor[] in = before.inputMetas().stream().map(m -> Tensor.randn(s * 7 + m.shape().numel(), m.shape().dims()).mul(3.0))
                    .toArray(Tensor[]::new);
            double[] e = GraphRuns.run(before, in)[0].toDoubleArray(), a = GraphRuns.run(after, in)[0].toDoubleArray();
            for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], 1e-5 * (1 + Math.abs(e[i])), "element " + i);
        }
    }

    @Test
    void theStableSoftmaxPatternIsOneSoftmaxOnAnyDimension() {
        for (int dim : new int[] {0, 1}) {
            TestGraph t = new TestGraph();
            ValueRef x = t.input(DType.FLOAT32, 4, 9);
            Graph g = t.build(stableSoftmax(t, x, dim));
            Graph out = Pipeline.standard().run(g).graph();
            assertEquals(1, out.opCount(), out.toTable());
            assertEquals(new Op.Softmax(dim, false), ((dev.kiln.ir.Node.Apply) out.node(1)).op());
            assertCloseOnRandomInputs(g, out);
        }
    }

    @Test
    void softmaxWithoutTheMaximumOrWithASharedIntermediateIsLeftAlone() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 4, 9);
        ValueRef e = t.unary(UnaryFn.EXP, x);
        assertEquals("no change", new FormNormalization().run(t.build(t.binary(BinaryFn.DIV, e, reduce(t, ReduceFn.SUM, 1, e)))).summary());

        TestGraph u = new TestGraph();
        ValueRef y = u.input(DType.FLOAT32, 4, 9);
        ValueRef m = reduce(u, ReduceFn.MAX, 1, y);
        ValueRef ey = u.unary(UnaryFn.EXP, u.binary(BinaryFn.SUB, y, m));
        assertEquals("no change", new FormNormalization().run(u.build(u.binary(BinaryFn.DIV, ey, reduce(u, ReduceFn.SUM, 1, ey)), m)).summary(),
                "the maximum is also returned");
    }

    @Test
    void llamaStyleRmsNormWithAndWithoutWeightIsOneRmsNorm() {
        for (boolean pow : new boolean[] {true, false}) {
            TestGraph t = new TestGraph();
            ValueRef x = t.input(DType.FLOAT32, 2, 5, 16), w = t.input(DType.FLOAT32, 16);
            Graph weighted = t.build(t.binary(BinaryFn.MUL, w, rms(t, x, 1e-6, pow)));
            Graph out = Pipeline.standard().run(weighted).graph();
            assertEquals(1, out.opCount(), out.toTable());
            assertEquals(new Op.RmsNorm(2, 1e-6, true), ((dev.kiln.ir.Node.Apply) out.node(2)).op());
            assertCloseOnRandomInputs(weighted, out);

            TestGraph u = new TestGraph();
            ValueRef y = u.input(DType.FLOAT32, 2, 5, 16);
            Graph plain = u.build(rms(u, y, 1e-5, pow));
            Graph outPlain = Pipeline.standard().run(plain).graph();
            assertEquals(new Op.RmsNorm(2, 1e-5, false), ((dev.kiln.ir.Node.Apply) outPlain.node(1)).op(), outPlain.toTable());
            assertCloseOnRandomInputs(plain, outPlain);
        }
    }

    @Test
    void theDivisionBySqrtFormIsRmsNormToo() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 3, 8);
        ValueRef ms = t.op(new Op.Reduce(ReduceFn.MEAN, List.of(1), true), t.binary(BinaryFn.MUL, x, x));
        Graph g = t.build(t.binary(BinaryFn.DIV, x, t.unary(UnaryFn.SQRT, t.scalar(BinaryFn.ADD, ms, 1e-5))));
        PassResult r = new FormNormalization().run(g);
        assertEquals(List.of("%5 (div): x / sqrt(mean(x^2) + eps) is rms_norm(eps=1.0E-5)"), r.details());
        assertCloseOnRandomInputs(g, r.graph());
    }

    @Test
    void rmsNormOverAnotherDimensionOrWithAMisshapenWeightIsNotReformed() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 3, 8);
        ValueRef ms = t.op(new Op.Reduce(ReduceFn.MEAN, List.of(0), true), t.binary(BinaryFn.MUL, x, x));
        Graph g = t.build(t.binary(BinaryFn.MUL, x, t.unary(UnaryFn.RSQRT, t.scalar(BinaryFn.ADD, ms, 1e-5))));
        assertEquals("no change", new FormNormalization().run(g).summary());

        TestGraph u = new TestGraph();
        ValueRef y = u.input(DType.FLOAT32, 2, 5, 16), w = u.input(DType.FLOAT32, 5, 16);
        PassResult r = new FormNormalization().run(u.build(u.binary(BinaryFn.MUL, rms(u, y, 1e-6, true), w)));
        assertTrue(r.graph().toTable().contains("rms_norm(axis=2, eps=1.0E-6, hasWeight=false)"), r.graph().toTable());
        assertTrue(r.graph().toTable().contains("mul "), "the [5,16] weight stays a separate multiply:\n" + r.graph().toTable());
    }
}
