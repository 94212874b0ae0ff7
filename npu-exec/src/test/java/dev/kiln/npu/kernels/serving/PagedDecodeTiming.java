package dev.kiln.npu.kernels.serving;

import dev.kiln.nn.F;
import dev.kiln.nn.Serving;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.util.Random;

import static dev.kiln.testing.TestTensors.assertClose;
import static dev.kiln.testing.TestTensors.values;

/**
 * A rough timing (run with {@code -Dkiln.timing=true}): paged decode of 8 sequences of
 * 2048 cached tokens in shuffled blocks of 16, 8 query heads over 2 KV heads of size 64,
 * against scaled-dot-product attention of the same values on contiguous KV.
 */
@EnabledIfSystemProperty(named = "kiln.timing", matches = "true")
class PagedDecodeTiming {

    @Test
    void pagedDecodeAgainstContiguousSdpa() {
        int batch = 8, ctx = 2048, blockSize = 16, heads = 8, kvHeads = 2, dim = 64, perSeq = ctx / blockSize;
        Random r = new Random(1);
        int[] table = PagedAttentionProperties.distinctBlocks(batch * perSeq, batch * perSeq, r);
        float[] q = floats(r, batch * heads * dim), k = floats(r, batch * kvHeads * ctx * dim), v = floats(r, k.length);
        // Contiguous [B, Hkv, ctx, D] for sdpa; the same rows scattered through the table for the paged cache.
        float[] kc = new float[k.length], vc = new float[v.length];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < kvHeads; h++) {
                for (int j = 0; j < ctx; j++) {
                    int src = ((b * kvHeads + h) * ctx + j) * dim;
                    int dst = ((table[b * perSeq + j / blockSize] * blockSize + j % blockSize) * kvHeads + h) * dim;
                    System.arraycopy(k, src, kc, dst, dim);
                    System.arraycopy(v, src, vc, dst, dim);
                }
            }
        }
        Tensor query = Tensor.of(q, batch, heads, dim), keyCache = Tensor.of(kc, batch * perSeq, blockSize, kvHeads, dim);
        Tensor valueCache = Tensor.of(vc, batch * perSeq, blockSize, kvHeads, dim), tables = Tensor.of(table, batch, perSeq);
        int[] lens = new int[batch], starts = new int[batch + 1];
        for (int b = 0; b < batch; b++) { lens[b] = ctx; starts[b + 1] = b + 1; }
        Tensor contextLens = Tensor.of(lens, batch), queryStartLoc = Tensor.of(starts, batch + 1);
        Tensor q4 = query.reshape(batch, heads, 1, dim), k4 = Tensor.of(k, batch, kvHeads, ctx, dim), v4 = Tensor.of(v, batch, kvHeads, ctx, dim);

        Tensor paged = Serving.pagedAttention(query, keyCache, valueCache, tables, contextLens, queryStartLoc);
        Tensor dense = F.scaledDotProductAttention(q4, k4, v4, null, false, null, true);
        assertClose("paged vs sdpa", paged.shape(), values(dense.reshape(batch, heads, dim)), paged, 1e-4, 1e-5);

        double pagedMs = time(() -> Serving.pagedAttention(query, keyCache, valueCache, tables, contextLens, queryStartLoc));
        double denseMs = time(() -> F.scaledDotProductAttention(q4, k4, v4, null, false, null, true));
        System.out.printf("paged decode B=%d ctx=%d BS=%d H=%d Hkv=%d D=%d: paged %.3f ms, sdpa contiguous %.3f ms%n",
                batch, ctx, blockSize, heads, kvHeads, dim, pagedMs, denseMs);
    }

    /** Median milliseconds of repeated calls after a warm-up, within about two seconds. */
    private static double time(Runnable call) {
        for (int i = 0; i < 30; i++) call.run();
        double[] ms = new double[40];
        for (int i = 0; i < ms.length; i++) {
            long t0 = System.nanoTime();
            call.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        java.util.Arrays.sort(ms);
        return ms[ms.length / 2];
    }

    private static float[] floats(Random r, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = r.nextFloat() * 2 - 1;
        return f;
    }
}
