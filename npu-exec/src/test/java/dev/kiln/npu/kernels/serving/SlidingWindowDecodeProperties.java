package dev.kiln.npu.kernels.serving;

import dev.kiln.nn.Serving;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

import java.util.Arrays;
import java.util.Random;

import static dev.kiln.testing.TestTensors.assertClose;
import static dev.kiln.testing.TestTensors.values;

class SlidingWindowDecodeProperties {

    /**
     * Each sequence writes its whole history into its ring (wrapping many times for long
     * positions), slots never written stay NaN; the decode must equal attention over the
     * full history with a window mask.
     */
    @Property(tries = 80)
    void aWrappedRingEqualsFullCacheAttentionWithAWindowMask(@ForAll long seed, @ForAll @IntRange(min = 1, max = 3) int batch,
                                                             @ForAll @IntRange(min = 1, max = 9) int window,
                                                             @ForAll("headSizes") int dim, @ForAll("heads") int[] heads,
                                                             @ForAll("dtypes") DType dtype, @ForAll Presentation presentation,
                                                             @ForAll boolean softcapped, @ForAll boolean defaults) {
        Random r = new Random(seed);
        int h = heads[0], hkv = heads[1], row = hkv * dim;
        long[] positions = new long[batch];
        double[] ring = new double[batch * window * row], ringValues = new double[ring.length];
        Arrays.fill(ring, Double.NaN);
        Arrays.fill(ringValues, Double.NaN);
        double[][] history = new double[batch][], historyValues = new double[batch][];
        for (int b = 0; b < batch; b++) {
            positions[b] = r.nextInt(4) == 0 ? r.nextInt(window) : r.nextInt(200);
            int len = (int) positions[b] + 1;
            history[b] = PagedAttentionProperties.random(r, len * row);
            historyValues[b] = PagedAttentionProperties.random(r, len * row);
            for (int j = 0; j < len; j++) {
                int slot = (b * window + j % window) * row;
                System.arraycopy(history[b], j * row, ring, slot, row);
                System.arraycopy(historyValues[b], j * row, ringValues, slot, row);
            }
        }
        double[] q = PagedAttentionProperties.random(r, batch * h * dim);
        Tensor query = TestTensors.tensor(q, dtype, presentation, batch, h, dim);
        Tensor keyRing = TestTensors.tensor(ring, dtype, presentation, batch, window, hkv, dim);
        Tensor valueRing = TestTensors.tensor(ringValues, dtype, presentation, batch, window, hkv, dim);
        double scale = defaults ? 1 / Math.sqrt(dim) : 0.3 + r.nextDouble();
        double softcap = defaults || !softcapped ? 0 : 1 + 5 * r.nextDouble();
        Tensor out = defaults ? Serving.slidingWindowDecode(query, keyRing, valueRing, Tensor.of(positions, batch))
                : Serving.slidingWindowDecode(query, keyRing, valueRing, Tensor.of(positions, batch), scale, softcap);

        double[] qr = values(query), expected = new double[q.length];
        for (int b = 0; b < batch; b++) {
            // The full history as a one-block paged cache, rounded to the dtype as the ring holds it.
            int len = (int) positions[b] + 1;
            double[] k = round(history[b], dtype), v = round(historyValues[b], dtype);
            double[] qb = Arrays.copyOfRange(qr, b * h * dim, (b + 1) * h * dim);
            double[] ob = PagedReference.attention(qb, h, dim, k, v, len, hkv, new int[] {0}, 1, new int[] {len},
                    new int[] {0, 1}, scale, true, window, softcap);
            System.arraycopy(ob, 0, expected, b * h * dim, h * dim);
        }
        assertClose("slidingWindowDecode", query.shape(), expected, out, PagedAttentionProperties.rtol(dtype),
                PagedAttentionProperties.atol(dtype));
    }

    @Provide
    Arbitrary<Integer> headSizes() { return new PagedAttentionProperties().headSizes(); }

    @Provide
    Arbitrary<int[]> heads() { return new PagedAttentionProperties().heads(); }

    @Provide
    Arbitrary<DType> dtypes() { return new PagedAttentionProperties().dtypes(); }

    private static double[] round(double[] v, DType dtype) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) out[i] = TestTensors.roundTo(dtype, v[i]);
        return out;
    }
}
