package dev.kiln.npu.kernels.serving;

/**
 * Plain double-precision attention over a paged cache, straight from the kiln.PagedAttention
 * definition: a visibility test per key, softmax over the visible scores, zeros when none.
 * Caches are row-major [NB, BS, Hkv, D] arrays. StrictMath keeps generated conformance cases
 * byte-identical on every JVM.
 */
final class PagedReference {
    private PagedReference() {}

    static double[] attention(double[] query, int heads, int dim, double[] keyCache, double[] valueCache, int blockSize,
                              int kvHeads, int[] blockTables, int maxBlocks, int[] contextLens, int[] queryStartLoc,
                              double scale, boolean causal, int window, double softcap) {
        int tokens = queryStartLoc[queryStartLoc.length - 1];
        double[] out = new double[tokens * heads * dim];
        int group = heads / kvHeads;
        for (int s = 0; s < contextLens.length; s++) {
            int qLen = queryStartLoc[s + 1] - queryStartLoc[s], ctx = contextLens[s];
            for (int i = 0; i < qLen; i++) {
                int row = queryStartLoc[s] + i, p = ctx - qLen + i;
                for (int h = 0; h < heads; h++) {
                    int kvh = h / group;
                    double[] scores = new double[ctx];
                    boolean[] visible = new boolean[ctx];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < ctx; j++) {
                        visible[j] = (!causal || j <= p) && (window == 0 || j > p - window);
                        if (!visible[j]) continue;
                        int at = keyRow(blockTables[s * maxBlocks + j / blockSize], j % blockSize, kvh, blockSize, kvHeads, dim);
                        double dot = 0;
                        for (int d = 0; d < dim; d++) dot += query[(row * heads + h) * dim + d] * keyCache[at + d];
                        double score = scale * dot;
                        if (softcap > 0) score = softcap * StrictMath.tanh(score / softcap);
                        scores[j] = score;
                        max = Math.max(max, score);
                    }
                    double sum = 0;
                    double[] acc = new double[dim];
                    for (int j = 0; j < ctx; j++) {
                        if (!visible[j]) continue;
                        double w = StrictMath.exp(scores[j] - max);
                        sum += w;
                        int at = keyRow(blockTables[s * maxBlocks + j / blockSize], j % blockSize, kvh, blockSize, kvHeads, dim);
                        for (int d = 0; d < dim; d++) acc[d] += w * valueCache[at + d];
                    }
                    for (int d = 0; d < dim; d++) out[(row * heads + h) * dim + d] = sum == 0 ? 0 : acc[d] / sum;
                }
            }
        }
        return out;
    }

    static int keyRow(int block, int slot, int kvHead, int blockSize, int kvHeads, int dim) {
        return ((block * blockSize + slot) * kvHeads + kvHead) * dim;
    }
}
