package dev.kiln.npu.kernels.serving;

import dev.kiln.nn.SlidingWindowCache;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static dev.kiln.testing.TestTensors.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SlidingWindowCacheProperties {

    /** The full history of one sequence, for the reference. */
    private static final class History {
        final int row;
        double[] keys = new double[0], values = new double[0];

        History(int row) { this.row = row; }

        void append(double[] k, double[] v) {
            keys = concat(keys, k);
            values = concat(values, v);
        }

        int length() { return keys.length / row; }

        private static double[] concat(double[] a, double[] b) {
            double[] out = Arrays.copyOf(a, a.length + b.length);
            System.arraycopy(b, 0, out, a.length, b.length);
            return out;
        }
    }

    /**
     * Streams of prefill chunks (1 to maxChunk tokens) and decode steps over two sequences,
     * wrapping their rings many times, give what attention over each full history with a
     * window mask gives, row by row.
     */
    @Property(tries = 60)
    void chunksAndDecodeStepsOverAWrappingRingEqualFullHistoryAttention(
            @ForAll long seed, @ForAll @IntRange(min = 1, max = 7) int window, @ForAll @IntRange(min = 1, max = 5) int maxChunk,
            @ForAll @IntRange(min = 1, max = 2) int kvHeads, @ForAll @IntRange(min = 1, max = 3) int group, @ForAll boolean softcapped) {
        Random r = new Random(seed);
        int dim = 8, heads = kvHeads * group, row = kvHeads * dim, sequences = 2;
        SlidingWindowCache cache = new SlidingWindowCache(sequences, window, maxChunk, kvHeads, dim, DType.FLOAT32);
        History[] history = {new History(row), new History(row)};
        double scale = 0.35, softcap = softcapped ? 2.5 : 0;
        int steps = 6 + 3 * (window + maxChunk);
        for (int step = 0; step < steps; step++) {
            boolean decode = r.nextInt(3) == 0;
            int s = r.nextInt(sequences);
            int tokens = decode ? sequences : 1 + r.nextInt(maxChunk);
            double[] q = PagedAttentionProperties.random(r, tokens * heads * dim);
            double[] k = PagedAttentionProperties.random(r, tokens * row), v = PagedAttentionProperties.random(r, tokens * row);
            Tensor query = TestTensors.tensor(q, DType.FLOAT32, TestTensors.Presentation.CONTIGUOUS, tokens, heads, dim);
            Tensor key = Tensor.of(toFloats(k), tokens, kvHeads, dim), value = Tensor.of(toFloats(v), tokens, kvHeads, dim);
            Tensor out;
            double[] expected = new double[q.length];
            if (decode) {
                out = cache.decode(query, key, value, scale, softcap);
                for (int b = 0; b < sequences; b++) {
                    history[b].append(Arrays.copyOfRange(k, b * row, (b + 1) * row), Arrays.copyOfRange(v, b * row, (b + 1) * row));
                    double[] rows = reference(history[b], Arrays.copyOfRange(q, b * heads * dim, (b + 1) * heads * dim), 1, heads, dim,
                            kvHeads, scale, window, softcap);
                    System.arraycopy(rows, 0, expected, b * heads * dim, heads * dim);
                }
            } else {
                long before = cache.length(s);
                out = cache.prefill(s, query, key, value, scale, softcap);
                assertEquals(before + tokens, cache.length(s));
                history[s].append(k, v);
                expected = reference(history[s], q, tokens, heads, dim, kvHeads, scale, window, softcap);
            }
            assertClose("step " + step, query.shape(), expected, out, 1e-4, 2e-5);
        }
        assertEquals(window + maxChunk - 1, cache.ringSize());
        assertEquals(cache.ringSize(), cache.keyRing().size(1), "memory stays constant however long the stream");
    }

    private static double[] reference(History h, double[] q, int rows, int heads, int dim, int kvHeads, double scale, int window,
                                      double softcap) {
        int len = h.length();
        return PagedReference.attention(q, heads, dim, h.keys, h.values, len, kvHeads, new int[] {0}, 1, new int[] {len},
                new int[] {0, rows}, scale, true, window, softcap);
    }

    private static float[] toFloats(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    @Test
    void aChunkLongerThanTheRingAllowsIsRefusedAndBadInputLeavesTheRingsAlone() {
        SlidingWindowCache cache = new SlidingWindowCache(1, 4, 3, 1, 8, DType.FLOAT32);
        Tensor q = Tensor.randn(1, 4, 2, 8), k = Tensor.randn(2, 4, 1, 8);
        var e = assertThrows(KilnShapeException.class, () -> cache.prefill(0, q, k, k, 1, 0));
        assertEquals("SlidingWindowCache.prefill: a chunk of 4 tokens exceeds maxChunk 3 (the ring holds window + maxChunk - 1 = 6"
                + " slots); split the chunk", e.getMessage());
        float[] ring = cache.keyRing().toFloatArray();
        assertThrows(KilnShapeException.class, () -> cache.prefill(0, Tensor.randn(3, 2, 2, 4), Tensor.randn(4, 2, 1, 8),
                Tensor.randn(5, 2, 1, 8), 1, 0));
        assertThrows(KilnShapeException.class, () -> cache.prefill(1, Tensor.randn(3, 2, 2, 8), Tensor.randn(4, 2, 1, 8),
                Tensor.randn(5, 2, 1, 8), 1, 0));
        assertArrayEquals(ring, cache.keyRing().toFloatArray());
        assertEquals(0, cache.length(0));
        var d = assertThrows(KilnShapeException.class, () -> cache.decode(Tensor.randn(3, 2, 2, 8), Tensor.randn(4, 2, 1, 8),
                Tensor.randn(5, 2, 1, 8), 1, 0));
        assertTrue(d.getMessage().contains("one token for each of the 1 sequences, got 2"), d.getMessage());
    }
}
