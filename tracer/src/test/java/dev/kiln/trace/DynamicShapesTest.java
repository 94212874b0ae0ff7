package dev.kiln.trace;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Dynamic;
import dev.kiln.Explanation;
import dev.kiln.Fn1;
import dev.kiln.Fn3;
import dev.kiln.Kiln;
import dev.kiln.nn.F;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DynamicShapesTest {
    /** The tracer is tested on the reference backend; the NPU backend lives in graph-optimizer. */
    private static final CompileOptions EAGER = CompileOptions.defaults().backend(Backend.EAGER);


    /** Causal self-attention over a growing sequence, as in a decode loop's prefix recompute. */
    private static Tensor attention(Tensor q, Tensor k, Tensor v) {
        int s = q.size(1);
        Tensor scores = q.matmul(k.mT()).mul(1.0 / Math.sqrt(q.size(-1)));
        Tensor mask = Tensor.ones(s, s).tril().eq(0.0);
        return F.softmax(Tensor.where(mask, Tensor.full(Double.NEGATIVE_INFINITY, 1), scores), -1).matmul(v)
                .reshape(-1, q.size(-1));
    }

    @Test
    void sequenceLengthBecomesSymbolicAfterASecondSize() {
        Fn3<Tensor> compiled = Kiln.compile((q, k, v) -> attention(q, k, v), EAGER);
        for (int s = 2; s <= 24; s++) {
            Tensor q = Tensor.randn(s, 1, s, 8), k = Tensor.randn(s + 100, 1, s, 8), v = Tensor.randn(s + 200, 1, s, 8);
            Tensor expected = attention(q, k, v);
            Tensor got = compiled.apply(q, k, v);
            assertEquals(expected.shape(), got.shape());
            assertArrayEquals(expected.toFloatArray(), got.toFloatArray(), 1e-6f, "s=" + s);
        }
        Explanation e = Kiln.explain(compiled, Tensor.randn(1, 1, 30, 8), Tensor.randn(2, 1, 30, 8), Tensor.randn(3, 1, 30, 8));
        assertEquals(2, e.compiles().size(), e.toString());
        assertEquals("s0 = a[1], b[1], c[1]", e.compiles().get(1).dynamicDims(), e.toString());
        assertTrue(e.compiles().get(1).signature().contains("float32[1,s0,8]"), e.compiles().get(1).signature());
    }

    @Test
    void dynamicOnMakesDimensionsSymbolicFromTheFirstCall() {
        Fn1<Tensor> f = Kiln.compile(x -> x.reshape(-1).softmax(0).mul(2.0),
                EAGER.dynamic(Dynamic.ON));
        for (int n = 2; n < 10; n++) {
            Tensor x = Tensor.randn(n, n, 3);
            assertArrayEquals(x.reshape(-1).softmax(0).mul(2.0).toFloatArray(), f.apply(x).toFloatArray(), 1e-7f);
        }
        Explanation e = Kiln.explain(f, Tensor.randn(1, 12, 3));
        assertEquals(1, e.compiles().size(), e.toString());
        assertEquals("s0 = a[0]; s1 = a[1]", e.compiles().get(0).dynamicDims());
    }

    static class Projection extends dev.kiln.nn.Module {
        Tensor weight = Tensor.randn(5, 6, 4);

        Tensor forward(Tensor x) { return F.linear(x, weight, null).reshape(-1, 2, 3).sum(1); }
    }

    @Test
    void moduleParametersKeepTheirIdentityWhileASequenceDimensionIsSymbolic() {
        Projection eager = new Projection();
        Projection compiled = Kiln.compile(new Projection(), EAGER);
        compiled.weight = eager.weight;
        for (int s = 2; s < 9; s++) {
            Tensor x = Tensor.randn(s, 3, s, 4);
            assertArrayEquals(eager.forward(x).toFloatArray(), compiled.forward(x).toFloatArray(), 1e-6f);
        }
        Explanation e = Kiln.explain(compiled, Tensor.randn(1, 3, 12, 4));
        assertEquals(2, e.compiles().size(), e.toString());
        assertEquals("s0 = x[1]", e.compiles().get(1).dynamicDims());
    }

    @Test
    void dynamicOffCompilesEverySize() {
        Fn1<Tensor> f = Kiln.compile(x -> x.add(1.0), EAGER.dynamic(Dynamic.OFF));
        for (int n = 2; n < 6; n++) f.apply(Tensor.zeros(n));
        assertEquals(4, Kiln.explain(f, Tensor.zeros(5)).compiles().size());
    }

    @Test
    void sizeOneIsSpecialised() {
        Fn1<Tensor> f = Kiln.compile(x -> x.sum(0), EAGER);
        f.apply(Tensor.ones(2, 3));
        f.apply(Tensor.ones(3, 3));
        assertArrayEquals(new float[] {1, 1, 1}, f.apply(Tensor.ones(1, 3)).toFloatArray());
        Explanation e = Kiln.explain(f, Tensor.ones(1, 3));
        assertEquals(3, e.compiles().size(), e.toString());
    }

    @Test
    void codeThatBranchesOnASizeNeverGetsAnotherSizesGraph() {
        Fn1<Tensor> f = Kiln.compile(x -> x.size(0) > 6 ? x.mul(2.0) : x.neg(), EAGER);
        for (int n = 2; n <= 10; n++) {
            Tensor x = Tensor.ones(n);
            float[] expected = new float[n];
            java.util.Arrays.fill(expected, n > 6 ? 2f : -1f);
            assertArrayEquals(expected, f.apply(x).toFloatArray(), "n=" + n);
        }
        String report = Kiln.explain(f, Tensor.ones(3)).toString();
        assertTrue(report.contains("differs from the symbolic template"), report);
    }
}
