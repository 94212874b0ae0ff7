package dev.kiln.opt.npu;

import dev.kiln.Fn3;
import dev.kiln.Kiln;
import dev.kiln.nn.F;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hand-written attention, compiled for the NPU, runs as one attention kernel and matches eager. */
class CompiledAttentionPatternTest {

    /** The pattern as users write it, with the causal mask built inside the function. */
    static Tensor causalPattern(Tensor q, Tensor k, Tensor v) {
        int l = q.shape().dim(-2), s = k.shape().dim(-2);
        Tensor keep = Tensor.ones(DType.BOOL, l, s).tril();
        Tensor scores = q.matmul(k.mT()).div(Math.sqrt(q.shape().dim(-1)));
        return F.softmax(Tensor.where(keep, scores, Tensor.full(Double.NEGATIVE_INFINITY, 1)), -1).matmul(v);
    }

    @Test
    void theCausalPatternCompilesToTheAttentionKernelWithItsCausalFlag() {
        Fn3<Tensor> compiled = Kiln.compile(CompiledAttentionPatternTest::causalPattern, NpuBackendTest.NPU);
        Tensor q = Tensor.randn(1, 2, 4, 37, 16), k = Tensor.randn(2, 2, 4, 37, 16), v = Tensor.randn(3, 2, 4, 37, 16);
        Tensor expected = causalPattern(q, k, v);
        Tensor got = compiled.apply(q, k, v);
        float[] e = expected.toFloatArray(), a = got.toFloatArray();
        for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], 2e-5f * (1 + Math.abs(e[i])), "element " + i);

        String explained = Kiln.explain(compiled, q, k, v).toString();
        assertTrue(explained.contains("eager scaled_dot_product_attention"), explained);
        assertFalse(explained.contains("eager softmax"), explained);
    }

    /** Softmax written out too, as in from-scratch transformer code: both patterns re-form, into one kernel. */
    static Tensor fullyHandWritten(Tensor q, Tensor k, Tensor v) {
        Tensor s = q.matmul(k.mT()).mul(0.25);
        Tensor e = s.sub(s.max(-1, true)).exp();
        return e.div(e.sum(-1, true)).matmul(v);
    }

    @Test
    void aHandWrittenSoftmaxInsideTheAttentionPatternBecomesPartOfTheKernel() {
        Fn3<Tensor> compiled = Kiln.compile(CompiledAttentionPatternTest::fullyHandWritten, NpuBackendTest.NPU);
        Tensor q = Tensor.randn(4, 1, 2, 19, 16), k = Tensor.randn(5, 1, 2, 23, 16), v = Tensor.randn(6, 1, 2, 23, 8);
        float[] e = fullyHandWritten(q, k, v).toFloatArray(), a = compiled.apply(q, k, v).toFloatArray();
        for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], 2e-5f * (1 + Math.abs(e[i])), "element " + i);
        String explained = Kiln.explain(compiled, q, k, v).toString();
        assertTrue(explained.contains("npu program: 1 launches"), explained);
        assertTrue(explained.contains("eager scaled_dot_product_attention"), explained);
    }
}
