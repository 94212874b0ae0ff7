package dev.kiln.npu.kernels.serving;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A random serving batch for tests: sequences mixing decode (one new row), full prefill and
 * a prefill chunk after a cached prefix (and, rarely, more rows than context), each with a context that is rarely a multiple of
 * the block size, held in shuffled non-contiguous blocks. Cache slots no sequence uses,
 * including the tails of partly used blocks, hold NaN; table entries past a sequence's
 * context are -1.
 */
record PagedBatch(int heads, int kvHeads, int dim, int blockSize, int blocks, int maxBlocks, int[] blockTables,
                  int[] contextLens, int[] queryStartLoc, double[] query, double[] keyCache, double[] valueCache) {

    int tokens() { return queryStartLoc[queryStartLoc.length - 1]; }

    int sequences() { return contextLens.length; }

    static PagedBatch random(Random r, int sequences, int heads, int kvHeads, int dim, int blockSize, int maxContext,
                             double amplitude) {
        int[] ctx = new int[sequences], qLen = new int[sequences];
        for (int s = 0; s < sequences; s++) {
            ctx[s] = r.nextInt(12) == 0 ? 0 : 1 + r.nextInt(maxContext);
            qLen[s] = switch (r.nextInt(7)) {
                case 0, 1 -> 1;
                case 2, 3 -> ctx[s];
                // Rows before the context's start see no key when causal.
                case 4 -> ctx[s] + 1 + r.nextInt(3);
                default -> 1 + r.nextInt(Math.max(ctx[s], 1));
            };
        }
        return of(r, ctx, qLen, heads, kvHeads, dim, blockSize, amplitude);
    }

    /**
     * Decode-like sequences with long contexts ({@code minContext..maxContext}) and a few
     * query rows each (up to {@code maxRows}): contexts past the kernel's partition size.
     */
    static PagedBatch longContexts(Random r, int sequences, int heads, int kvHeads, int dim, int blockSize, int minContext,
                                   int maxContext, int maxRows) {
        int[] ctx = new int[sequences], qLen = new int[sequences];
        for (int s = 0; s < sequences; s++) {
            ctx[s] = minContext + r.nextInt(maxContext - minContext + 1);
            qLen[s] = 1 + r.nextInt(maxRows);
        }
        return of(r, ctx, qLen, heads, kvHeads, dim, blockSize, 1);
    }

    private static PagedBatch of(Random r, int[] ctx, int[] qLen, int heads, int kvHeads, int dim, int blockSize, double amplitude) {
        int sequences = ctx.length, maxBlocks = 1, used = 0;
        for (int s = 0; s < sequences; s++) {
            int need = (ctx[s] + blockSize - 1) / blockSize;
            maxBlocks = Math.max(maxBlocks, need);
            used += need;
        }
        int blocks = used + 1 + r.nextInt(3);
        List<Integer> free = new ArrayList<>();
        for (int b = 0; b < blocks; b++) free.add(b);
        Collections.shuffle(free, r);
        int extraColumns = r.nextInt(2);
        maxBlocks += extraColumns;
        int[] table = new int[sequences * maxBlocks];
        java.util.Arrays.fill(table, -1);
        int next = 0;
        for (int s = 0; s < sequences; s++) {
            for (int b = 0; b < (ctx[s] + blockSize - 1) / blockSize; b++) table[s * maxBlocks + b] = free.get(next++);
        }
        int[] start = new int[sequences + 1];
        for (int s = 0; s < sequences; s++) start[s + 1] = start[s] + qLen[s];

        int rowSize = kvHeads * dim;
        double[] keys = new double[blocks * blockSize * rowSize], values = new double[keys.length];
        java.util.Arrays.fill(keys, Double.NaN);
        java.util.Arrays.fill(values, Double.NaN);
        for (int s = 0; s < sequences; s++) {
            for (int j = 0; j < ctx[s]; j++) {
                int at = (table[s * maxBlocks + j / blockSize] * blockSize + j % blockSize) * rowSize;
                for (int i = 0; i < rowSize; i++) {
                    keys[at + i] = (r.nextDouble() * 2 - 1) * amplitude;
                    values[at + i] = r.nextDouble() * 2 - 1;
                }
            }
        }
        double[] query = new double[start[sequences] * heads * dim];
        for (int i = 0; i < query.length; i++) query[i] = (r.nextDouble() * 2 - 1) * amplitude;
        return new PagedBatch(heads, kvHeads, dim, blockSize, blocks, maxBlocks, table, ctx, start, query, keys, values);
    }

    double[] reference(double[] roundedQuery, double[] roundedKeys, double[] roundedValues, double scale, boolean causal,
                       int window, double softcap) {
        return PagedReference.attention(roundedQuery, heads, dim, roundedKeys, roundedValues, blockSize, kvHeads,
                blockTables, maxBlocks, contextLens, queryStartLoc, scale, causal, window, softcap);
    }
}
