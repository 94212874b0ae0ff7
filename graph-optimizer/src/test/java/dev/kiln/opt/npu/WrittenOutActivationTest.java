package dev.kiln.opt.npu;

import dev.kiln.CompileOptions;
import dev.kiln.Fn1;
import dev.kiln.Kiln;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WrittenOutActivationTest {
    @Test
    void aWrittenOutSiluAndGeluBecomeMatmulEpilogues() {
        Tensor w1 = Tensor.randn(1, 64, 96).mul(0.2), b1 = Tensor.randn(2, 96), w2 = Tensor.randn(3, 96, 32).mul(0.2);
        Fn1<Tensor> mlp = x -> {
            Tensor h = x.matmul(w1).add(b1);
            Tensor silu = h.mul(h.sigmoid());
            Tensor g = silu.matmul(w2);
            return g.mul(0.5).mul(g.div(Math.sqrt(2)).erf().add(1.0));
        };
        Fn1<Tensor> compiled = Kiln.compile(mlp, CompileOptions.defaults());
        Tensor x = Tensor.randn(4, 48, 64);
        float[] expected = mlp.apply(x).toFloatArray(), got = compiled.apply(x).toFloatArray();
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], got[i], 1e-5 * (1 + Math.abs(expected[i])), "element " + i);
        String explain = Kiln.explain(compiled, x).toString();
        assertTrue(explain.contains("npu program: 2 launches"), explain);
        assertTrue(explain.contains("matmul matmul_add_silu") && explain.contains("matmul matmul_gelu"), explain);
    }
}
