package dev.kiln.npu.kernels.serving;

import dev.kiln.ops.ServingKernels;
import dev.kiln.tensor.Tensor;

/**
 * The virtual NPU's serving kernels. Both attention ops share one paged kernel: a ring
 * buffer [B, R, Hkv, D] is a paged cache whose sequence {@code b} maps every logical block
 * of size R to physical block {@code b}, so position {@code j} lands in slot {@code j % R},
 * and a window W of at most R keeps the visible positions on distinct slots.
 */
public final class NpuServingKernels implements ServingKernels {

    @Override
    public void reshapeAndCache(Tensor key, Tensor value, Tensor keyCache, Tensor valueCache, long[] slots) {
        ReshapeAndCacheKernel.run(key, value, keyCache, valueCache, slots);
    }

    @Override
    public void pagedAttention(Tensor query, Tensor keyCache, Tensor valueCache, int[] blockTables, int maxBlocks,
                               int[] contextLens, int[] queryStartLoc, AttentionParams params, Tensor out) {
        int tokens = query.size(0);
        int[] sequence = new int[tokens], first = new int[tokens], last = new int[tokens];
        for (int s = 0; s + 1 < queryStartLoc.length; s++) {
            int qLen = queryStartLoc[s + 1] - queryStartLoc[s], ctx = contextLens[s];
            for (int i = 0; i < qLen; i++) {
                int r = queryStartLoc[s] + i;
                // Bottom-right alignment: the last query row is the last context position.
                int position = ctx - qLen + i;
                sequence[r] = s;
                first[r] = params.slidingWindow() > 0 ? Math.max(0, position - params.slidingWindow() + 1) : 0;
                last[r] = params.causal() ? position : ctx - 1;
            }
        }
        PagedAttentionKernel.run(query, keyCache, valueCache, (s, logical) -> blockTables[s * maxBlocks + logical],
                new PagedAttentionKernel.Rows(sequence, first, last), params, out);
    }

    @Override
    public void ringAttention(Tensor query, Tensor keyRing, Tensor valueRing, int[] rowSequence, long[] rowPosition,
                              AttentionParams params, Tensor out) {
        int rows = query.size(0), ring = keyRing.size(1), window = params.slidingWindow();
        int[] first = new int[rows], last = new int[rows];
        for (int r = 0; r < rows; r++) {
            // Positions may exceed the int range; only their residues mod R address slots.
            long p = rowPosition[r];
            long lo = Math.max(0, p - window + 1);
            long base = lo - lo % ring;
            first[r] = (int) (lo - base);
            last[r] = (int) (p - base);
        }
        PagedAttentionKernel.run(query, keyRing, valueRing, (s, logical) -> s, new PagedAttentionKernel.Rows(rowSequence, first, last),
                params, out);
    }
}
