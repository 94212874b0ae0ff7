package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** softmax and log_softmax along any dimension against a double reference. */
class SoftmaxProperties {

    @Provide
    Arbitrary<int[]> shapes() { return Arbitraries.oneOf(TestTensors.shapes(0, 4, 5), TestTensors.shapes(1, 3, 70)
            .filter(s -> Refs.numel(s) <= 30_000)); }

    @Provide
    Arbitrary<DType> types() { return Arbitraries.of(DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.BFLOAT16); }

    @Provide
    Arbitrary<Double> scales() { return Arbitraries.of(1.0, 10.0, 80.0, 1e4); }

    @Property(tries = 200)
    void softmaxMatchesReference(@ForAll("shapes") int[] shape, @ForAll long seed, @ForAll boolean log,
                                 @ForAll Presentation p, @ForAll("types") DType t, @ForAll("scales") double scale,
                                 @ForAll boolean nonFinite) {
        int rank = shape.length;
        int dim = rank == 0 ? 0 : new SplittableRandom(seed).nextInt(rank);
        check(shape, dim, seed, log, p, t, scale, nonFinite);
    }

    @Provide
    Arbitrary<int[]> acrossShapes() {
        Arbitrary<Integer> lead = Arbitraries.integers().between(1, 40), inner = Arbitraries.integers().between(1, 300);
        return Arbitraries.oneOf(
                net.jqwik.api.Combinators.combine(lead, inner).as((a, b) -> new int[] {a, b}),
                net.jqwik.api.Combinators.combine(lead, lead, inner).as((a, b, c) -> new int[] {a % 5 + 1, b, c}));
    }

    /** Along a leading dimension of a contiguous float32 tensor: rows side by side, vectorised across them. */
    @Property(tries = 60)
    void softmaxAcrossAdjacentRowsMatchesReference(@ForAll("acrossShapes") int[] shape, @ForAll long seed, @ForAll boolean log,
                                                   @ForAll boolean offset, @ForAll("scales") double scale,
                                                   @ForAll boolean nonFinite) {
        int dim = new SplittableRandom(seed).nextInt(shape.length - 1);
        check(shape, dim, seed, log, offset ? Presentation.OFFSET : Presentation.CONTIGUOUS, DType.FLOAT32, scale, nonFinite);
    }

    private static void check(int[] shape, int dim, long seed, boolean log, Presentation p, DType t, double scale, boolean nonFinite) {
        double[] data = Refs.rounded(TestTensors.randomData(Refs.numel(shape), seed, scale, nonFinite), t);
        Tensor x = TestTensors.tensor(data, t, p, shape);
        Tensor y = log ? x.logSoftmax(dim) : x.softmax(dim);
        String what = (log ? "log_softmax" : "softmax") + " dim " + dim + " of " + t + Shape.of(shape) + " " + p + " scale " + scale;
        Refs.assertShape(what, shape, y);
        assertEquals(t, y.dtype());
        double[] got = TestTensors.values(y);
        double u = Refs.unitRoundoff(t);
        for (int[] line : Refs.lines(shape, dim)) {
            double[] e = reference(data, line, log);
            double maxAbs = 0, max = Double.NEGATIVE_INFINITY;
            for (int i : line) {
                if (Double.isFinite(data[i])) maxAbs = Math.max(maxAbs, Math.abs(data[i]));
                max = Math.max(max, data[i]);
            }
            for (int j = 0; j < line.length; j++) {
                // float32 compute: a few ulp from exp, the sum and the scaling, plus exp's
                // conditioning: x - max rounded to float is off by up to |x - max| 2^-25, a
                // relative error of that size in exp(x - max). log_softmax's (x - max) - log(sum)
                // is exact to the rounding of values of the input's magnitude.
                double d = Math.abs(data[line[j]] - max), conditioning = Double.isFinite(d) ? d * 0x1p-24 : 0;
                double tol = log ? 2 * u * Math.abs(e[j]) + 4e-7 * (1 + maxAbs)
                        : (2 * u + 2e-6 + conditioning) * Math.abs(e[j]) + Refs.tiny(t);
                if (t == DType.FLOAT64) tol = log ? 1e-13 * (1 + maxAbs + Math.abs(e[j])) : 1e-13 * Math.abs(e[j]) + 1e-300;
                Refs.assertNear(what, line[j], e[j], got[line[j]], tol, t);
            }
        }
    }

    private static double[] reference(double[] data, int[] line, boolean log) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i : line) max = Math.max(max, data[i]);
        double sum = 0;
        for (int i : line) sum += Math.exp(data[i] - max);
        double[] out = new double[line.length];
        for (int j = 0; j < line.length; j++) {
            double d = data[line[j]] - max;
            out[j] = log ? d - Math.log(sum) : Math.exp(d) / sum;
        }
        return out;
    }

    @Test
    void rowsWithInfinityOrNaNBecomeNaN() {
        Tensor x = Tensor.of(new float[] {
                1, Float.POSITIVE_INFINITY, 2,
                1, Float.NaN, 2,
                Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY,
                Float.NEGATIVE_INFINITY, 0, Float.NEGATIVE_INFINITY}, 4, 3);
        double[] s = TestTensors.values(x.softmax(1));
        for (int i = 0; i < 9; i++) assertTrue(Double.isNaN(s[i]), "element " + i);
        assertEquals(0, s[9]);
        assertEquals(1, s[10]);
        assertEquals(0, s[11]);
        double[] l = TestTensors.values(x.logSoftmax(1));
        for (int i = 0; i < 9; i++) assertTrue(Double.isNaN(l[i]), "log element " + i);
        assertEquals(Double.NEGATIVE_INFINITY, l[9]);
        assertEquals(0, l[10]);
    }

    @Test
    void largeMagnitudesAreStable() {
        Tensor x = Tensor.of(new float[] {10000, 10001, 9999, -10000}, 4);
        double z = Math.exp(-1) + 1 + Math.exp(-2);
        double[] s = TestTensors.values(x.softmax(0));
        assertEquals(Math.exp(-1) / z, s[0], 1e-7);
        assertEquals(1 / z, s[1], 1e-7);
        assertEquals(0, s[3]);
        double[] l = TestTensors.values(x.logSoftmax(0));
        assertEquals(-1 - Math.log(z), l[0], 1e-6);
        assertEquals(-20001 - Math.log(z), l[3], 1e-2);
    }

    @Test
    void longRowsSumToOne() {
        int n = 4099;
        float[] f = new float[2 * n];
        for (int i = 0; i < f.length; i++) f[i] = (float) Math.sin(i * 0.1) * 30;
        double[] s = TestTensors.values(Tensor.of(f, 2, n).softmax(1));
        for (int r = 0; r < 2; r++) {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += s[r * n + i];
            assertEquals(1, sum, 1e-5);
        }
    }
}
