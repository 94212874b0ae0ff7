package dev.kiln.npu.kernels.serving;

import dev.kiln.npu.Parallel;
import dev.kiln.tensor.Tensor;

/** Scatters new key and value rows into a paged cache by slot; tokens with slot -1 are skipped. */
final class ReshapeAndCacheKernel {
    private ReshapeAndCacheKernel() {}

    static void run(Tensor key, Tensor value, Tensor keyCache, Tensor valueCache, long[] slots) {
        int tokens = key.size(0), heads = key.size(1), dim = key.size(2), blockSize = keyCache.size(1);
        if (tokens == 0 || heads == 0 || dim == 0) return;
        CacheView k = CacheView.of(key), v = CacheView.of(value), kc = CacheView.of(keyCache), vc = CacheView.of(valueCache);
        // Split by head, not by token: tokens stay in order, so a repeated slot ends with the last token's row.
        Parallel.forRange(heads, (long) tokens * heads * dim * 2, (h0, h1) -> {
            for (long h = h0; h < h1; h++) {
                for (int t = 0; t < tokens; t++) {
                    long slot = slots[t];
                    if (slot < 0) continue;
                    long block = slot / blockSize, offset = slot % blockSize;
                    kc.copyRow(k, k.row(t, h), kc.row(block, offset, h), dim);
                    vc.copyRow(v, v.row(t, h), vc.row(block, offset, h), dim);
                }
            }
        });
    }
}
