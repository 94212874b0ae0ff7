package dev.kiln.npu.kernels.attention;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link RowProducts} against double-precision references, with rows scattered through a segment. */
class RowProductsProperties {
    private static final int LANES = RowProducts.LANES;

    @Provide
    Arbitrary<Integer> widths() { return Arbitraries.of(LANES, 2 * LANES, 3 * LANES, 8 * LANES); }

    /** {@code n} rows of {@code width} floats at shuffled row slots of a segment twice as large, with their byte offsets. */
    record Scattered(float[] data, MemorySegment segment, long[] rowByte) {
        static Scattered of(SplittableRandom r, int n, int width) {
            float[] data = new float[2 * n * width + width];
            for (int i = 0; i < data.length; i++) data[i] = Float.NaN;
            int[] slots = new int[2 * n];
            for (int i = 0; i < slots.length; i++) slots[i] = i;
            for (int i = slots.length - 1; i > 0; i--) {
                int j = r.nextInt(i + 1), t = slots[i];
                slots[i] = slots[j];
                slots[j] = t;
            }
            long[] rowByte = new long[n];
            for (int k = 0; k < n; k++) {
                int at = slots[k] * width;
                for (int e = 0; e < width; e++) data[at + e] = (float) (r.nextDouble() * 2 - 1);
                rowByte[k] = (long) at * Float.BYTES;
            }
            return new Scattered(data, MemorySegment.ofArray(data), rowByte);
        }

        float at(int k, int e) { return data[(int) (rowByte[k] / Float.BYTES) + e]; }
    }

    @Property(tries = 200)
    void scoresAreTheDotProductsOfEveryRowAndKey(@ForAll @IntRange(min = 1, max = 9) int rows, @ForAll("widths") int width,
                                                 @ForAll @IntRange(min = 1, max = 70) int n, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Scattered keys = Scattered.of(r, n, width);
        int qAt = r.nextInt(5), stride = Math.ceilDiv(n, LANES) * LANES + LANES * r.nextInt(2), scoresAt = r.nextInt(3);
        float[] q = new float[qAt + rows * width];
        for (int i = 0; i < q.length; i++) q[i] = (float) (r.nextDouble() * 2 - 1);
        float[] scores = new float[scoresAt + rows * stride];
        new RowProducts().scores(q, qAt, rows, width, keys.segment(), keys.rowByte(), n, scores, scoresAt, stride);
        for (int i = 0; i < rows; i++) {
            for (int k = 0; k < n; k++) {
                double dot = 0, magnitude = 0;
                for (int e = 0; e < width; e++) {
                    dot += (double) q[qAt + i * width + e] * keys.at(k, e);
                    magnitude += Math.abs((double) q[qAt + i * width + e] * keys.at(k, e));
                }
                assertEquals(dot, scores[scoresAt + i * stride + k], 1e-6 * magnitude + 1e-7, "row " + i + ", key " + k);
            }
        }
    }

    @Property(tries = 200)
    void accumulateAddsTheWeightedRows(@ForAll @IntRange(min = 1, max = 9) int rows, @ForAll("widths") int width,
                                       @ForAll @IntRange(min = 1, max = 70) int n, @ForAll boolean skipZeros, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Scattered values = Scattered.of(r, n, width);
        int stride = n + r.nextInt(3), accAt = r.nextInt(4);
        float[] weights = new float[rows * stride], acc = new float[accAt + rows * width];
        for (int i = 0; i < weights.length; i++) weights[i] = r.nextInt(4) == 0 ? 0f : (float) r.nextDouble();
        for (int i = 0; i < acc.length; i++) acc[i] = (float) (r.nextDouble() - 0.5);
        // A value no row weighs may hold NaN or infinity when zeros are skipped: it must not reach any row.
        int unweighed = -1;
        if (skipZeros) {
            unweighed = r.nextInt(n);
            for (int i = 0; i < rows; i++) weights[i * stride + unweighed] = 0f;
            int at = (int) (values.rowByte()[unweighed] / Float.BYTES);
            for (int e = 0; e < width; e++) values.data()[at + e] = e % 2 == 0 ? Float.NaN : Float.POSITIVE_INFINITY;
        }
        double[] expected = new double[acc.length];
        for (int i = 0; i < acc.length; i++) expected[i] = acc[i];
        for (int i = 0; i < rows; i++) {
            for (int k = 0; k < n; k++) {
                if (k == unweighed) continue;
                for (int e = 0; e < width; e++) expected[accAt + i * width + e] += (double) weights[i * stride + k] * values.at(k, e);
            }
        }
        new RowProducts().accumulate(acc, accAt, rows, width, values.segment(), values.rowByte(), n, weights, 0, stride, skipZeros);
        for (int i = 0; i < acc.length; i++) assertEquals(expected[i], acc[i], 1e-5 * (1 + n), "element " + i);
    }

    /** The scalar twins give the vector methods' bits, NaN and infinities included. */
    @Property(tries = 150)
    void scalarTwinsGiveTheVectorBits(@ForAll @IntRange(min = 1, max = 9) int rows, @ForAll("widths") int width,
                                      @ForAll @IntRange(min = 1, max = 70) int n, @ForAll boolean skipZeros, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Scattered rowsOf = Scattered.of(r, n, width);
        if (r.nextBoolean()) rowsOf.data()[(int) (rowsOf.rowByte()[r.nextInt(n)] / Float.BYTES) + r.nextInt(width)] = Float.NaN;
        int stride = Math.ceilDiv(n, LANES) * LANES;
        float[] q = new float[rows * width], weights = new float[rows * stride], acc = new float[rows * width];
        for (int i = 0; i < q.length; i++) q[i] = (float) (r.nextDouble() * 2 - 1);
        for (int i = 0; i < weights.length; i++) weights[i] = r.nextInt(3) == 0 ? 0f : (float) (r.nextDouble() * 30 - 20);
        for (int i = 0; i < acc.length; i++) acc[i] = (float) (r.nextDouble() - 0.5);
        RowProducts products = new RowProducts();

        float[] vector = new float[rows * stride], scalar = new float[rows * stride];
        products.scores(q, 0, rows, width, rowsOf.segment(), rowsOf.rowByte(), n, vector, 0, stride);
        products.scoresScalar(q, 0, rows, width, rowsOf.segment(), rowsOf.rowByte(), n, scalar, 0, stride);
        for (int i = 0; i < rows; i++) {
            for (int k = 0; k < n; k++) assertBits(vector[i * stride + k], scalar[i * stride + k], "score " + i + ", " + k);
        }

        float[] accVector = acc.clone(), accScalar = acc.clone();
        products.accumulate(accVector, 0, rows, width, rowsOf.segment(), rowsOf.rowByte(), n, weights, 0, stride, skipZeros);
        RowProducts.accumulateScalar(accScalar, 0, rows, width, rowsOf.segment(), rowsOf.rowByte(), n, weights, 0, stride, skipZeros);
        for (int i = 0; i < acc.length; i++) assertBits(accVector[i], accScalar[i], "accumulator " + i);

        float[] sv = weights.clone(), ss = weights.clone();
        float shift = (float) r.nextDouble();
        assertBits(RowProducts.exponentiate(sv, 0, n, shift), products.exponentiateScalar(ss, 0, n, shift), "weights' sum");
        for (int i = 0; i < sv.length; i++) assertBits(sv[i], ss[i], "weight " + i);
    }

    private static void assertBits(float expected, float actual, String what) {
        assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(actual), () -> what + ": vector " + expected + ", scalar " + actual);
    }

    @Property(tries = 100)
    void exponentiateGivesTheWeightsAndTheirSum(@ForAll @IntRange(min = 0, max = 70) int n, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int at = r.nextInt(5);
        float[] s = new float[at + n + 3];
        for (int i = 0; i < s.length; i++) s[i] = r.nextInt(8) == 0 ? Float.NEGATIVE_INFINITY : (float) (r.nextDouble() * 20 - 10);
        float[] before = s.clone();
        float shift = (float) (r.nextDouble() * 4);
        float sum = RowProducts.exponentiate(s, at, n, shift);
        double expected = 0;
        for (int i = 0; i < s.length; i++) {
            if (i < at || i >= at + n) {
                assertEquals(before[i], s[i], "outside the range, s[" + i + "] stays");
                continue;
            }
            // The difference is a float, as in a softmax over float scores; exp is then within 1.5 ulp.
            double w = Math.exp(before[i] - shift);
            assertEquals(w, s[i], 2e-7 * w, "weight " + i);
            expected += w;
        }
        assertEquals(expected, sum, 1e-6 * expected + 1e-30);
        assertTrue(sum >= 0);
    }
}
