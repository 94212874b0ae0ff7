package dev.kiln.npu;

import dev.kiln.nn.F;
import dev.kiln.ops.Warmup;
import dev.kiln.tensor.Tensor;


/**
 * Warms the kernels' hot methods up: a small transformer-block-shaped workload through the
 * same kernels a model runs, so that their Vector API loops reach C2 before the first real
 * call needs them (see {@link dev.kiln.ops.BackgroundWarmup}). The kernels compute the same
 * bits in every JIT tier (see {@code Lanes}), so this never changes a result.
 */
public final class KernelWarmup implements Warmup {
    private Workload workload;

    /** After the tracer and compiler warm-ups: they are short, and the first compiled call needs them first. */
    @Override
    public int order() { return 100; }

    /** Enough rounds for the workload's methods to reach C2 here; more would only burn CPU. */
    @Override
    public int rounds() { return 60; }

    @Override
    public void round() {
        if (workload == null) workload = new Workload();
        workload.round();
    }

    /**
     * A pre-norm decoder block in miniature (batch 1, 64 tokens, model 128, 4 query and 2
     * key/value heads of 32, hidden 256), plus the activations and normalisations blocks
     * of other models use. Sizes are large enough to take the kernels' vectorised,
     * blocked and parallel paths, small enough for a round to take milliseconds.
     */
    private static final class Workload {
        private static final int SEQ = 64, MODEL = 128, HEADS = 4, KV_HEADS = 2, HEAD = 32, HIDDEN = 256;

        final Tensor x = Tensor.randn(1, 1, SEQ, MODEL);
        final Tensor norm = Tensor.ones(MODEL);
        final Tensor wq = Tensor.randn(2, MODEL, MODEL).mul(0.05), wk = Tensor.randn(3, KV_HEADS * HEAD, MODEL).mul(0.05),
                wv = Tensor.randn(4, KV_HEADS * HEAD, MODEL).mul(0.05), wo = Tensor.randn(5, MODEL, MODEL).mul(0.05);
        final Tensor gate = Tensor.randn(6, HIDDEN, MODEL).mul(0.05), up = Tensor.randn(7, HIDDEN, MODEL).mul(0.05),
                down = Tensor.randn(8, MODEL, HIDDEN).mul(0.05);
        final Tensor positions = Tensor.arange(SEQ);

        void round() {
            Tensor[] rope = F.rotaryTables(positions, HEAD, 10_000);
            Tensor h = F.rmsNorm(x, new int[] {MODEL}, norm, 1e-5);
            Tensor q = F.rotaryEmbedding(heads(F.linear(h, wq, null), HEADS), rope[0], rope[1], false);
            Tensor k = F.rotaryEmbedding(heads(F.linear(h, wk, null), KV_HEADS), rope[0], rope[1], false);
            Tensor v = heads(F.linear(h, wv, null), KV_HEADS);
            Tensor a = F.scaledDotProductAttention(q, k, v, null, true, null, true);
            Tensor r = x.add(F.linear(a.transpose(1, 2).reshape(1, SEQ, MODEL), wo, null));
            Tensor m = F.rmsNorm(r, new int[] {MODEL}, norm, 1e-5);
            Tensor y = r.add(F.linear(F.silu(F.linear(m, gate, null)).mul(F.linear(m, up, null)), down, null));
            Tensor g = F.layerNorm(y, new int[] {MODEL}, norm, null, 1e-5).gelu();
            g.softmax(-1).add(g.sigmoid()).mul(g.tanh()).sub(g.erf()).exp().sum(-1).max();
        }

        private static Tensor heads(Tensor t, int n) {
            return t.reshape(1, SEQ, n, HEAD).transpose(1, 2);
        }
    }
}
