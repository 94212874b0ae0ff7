package dev.kiln.npu.kernels;

import dev.kiln.nn.F;
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

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** layer_norm (y, mean, inverse std) and rms_norm against double references. */
class NormalizationProperties {

    @Provide
    Arbitrary<int[]> shapes() { return Arbitraries.oneOf(TestTensors.shapes(1, 4, 5), TestTensors.shapes(1, 3, 70)
            .filter(s -> Refs.numel(s) <= 30_000)); }

    @Provide
    Arbitrary<DType> types() { return Arbitraries.of(DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.BFLOAT16); }

    /** Inputs and their parameters for one case. */
    private record Case(int[] shape, int axis, double[] x, Tensor xt, double[] w, Tensor wt, double[] b, Tensor bt,
                        int rows, int n, String what) {}

    private static Case makeCase(String op, int[] shape, long seed, Presentation p, DType t, boolean weight, boolean bias,
                                 boolean nonFinite, double offset) {
        SplittableRandom r = new SplittableRandom(seed);
        int axis = r.nextInt(shape.length);
        int[] norm = Arrays.copyOfRange(shape, axis, shape.length);
        double[] x = TestTensors.randomData(Refs.numel(shape), seed, 3, nonFinite);
        for (int i = 0; i < x.length; i++) x[i] += offset;
        x = Refs.rounded(x, t);
        int[] wShape = TestTensors.broadcastPartner(norm, seed + 1), bShape = TestTensors.broadcastPartner(norm, seed + 2);
        double[] w = weight ? Refs.rounded(TestTensors.randomData(Refs.numel(wShape), seed + 3, 2, false), t) : null;
        double[] b = bias ? Refs.rounded(TestTensors.randomData(Refs.numel(bShape), seed + 4, 2, false), t) : null;
        int n = (int) Refs.numel(norm);
        int rows = (int) Refs.numel(Arrays.copyOf(shape, axis));
        String what = op + " axis " + axis + " of " + t + Shape.of(shape) + " " + p + " weight " + (weight ? Shape.of(wShape) : "-")
                + " bias " + (bias ? Shape.of(bShape) : "-") + " offset " + offset;
        return new Case(shape, axis, x, TestTensors.tensor(x, t, p, shape),
                w, weight ? TestTensors.tensor(w, t, wShape) : null, b, bias ? TestTensors.tensor(b, t, bShape) : null,
                rows, n, what);
    }

    /** Value of a parameter broadcast to the normalised shape at normalised position j. */
    private static double param(double[] values, Tensor t, int[] norm, int j, double absent) {
        if (values == null) return absent;
        return values[(int) TestTensors.ravelBroadcast(TestTensors.unravel(j, norm), t.shape().dims())];
    }

    @Property(tries = 150)
    void layerNormMatchesReference(@ForAll("shapes") int[] shape, @ForAll long seed, @ForAll Presentation p,
                                   @ForAll("types") DType t, @ForAll boolean weight, @ForAll boolean bias,
                                   @ForAll boolean nonFinite, @ForAll boolean offset) {
        Case c = makeCase("layer_norm", shape, seed, p, t, weight, bias, nonFinite, offset ? 1000 : 0);
        double eps = 1e-5;
        Tensor[] out = F.layerNormWithStats(c.xt, c.axis, c.wt, c.bt, eps);
        int[] statShape = shape.clone();
        Arrays.fill(statShape, c.axis, shape.length, 1);
        Refs.assertShape(c.what, shape, out[0]);
        Refs.assertShape(c.what, statShape, out[1]);
        Refs.assertShape(c.what, statShape, out[2]);
        double[] y = TestTensors.values(out[0]), mean = TestTensors.values(out[1]), rstd = TestTensors.values(out[2]);
        int[] norm = Arrays.copyOfRange(shape, c.axis, shape.length);
        double u = Refs.unitRoundoff(t);
        // float32 statistics: sums of float blocks carried in double, ~1e-7 relative.
        double stat = t == DType.FLOAT64 ? 1e-12 : 1e-6;
        for (int r = 0; r < c.rows; r++) {
            double m = 0;
            for (int j = 0; j < c.n; j++) m += c.x[r * c.n + j];
            m /= c.n;
            double v = 0;
            for (int j = 0; j < c.n; j++) {
                double d = c.x[r * c.n + j] - m;
                v += d * d;
            }
            v /= c.n;
            double rs = 1 / Math.sqrt(v + eps);
            // Errors scale with the spread, not the mean: the 1000 offset must not loosen them.
            double spread = Math.sqrt(v);
            Refs.assertNear(c.what + " mean", r, m, mean[r], 2 * u * Math.abs(m) + stat * spread + Refs.tiny(t), t);
            Refs.assertNear(c.what + " rstd", r, rs, rstd[r], (2 * u + stat) * rs, t);
            for (int j = 0; j < c.n; j++) {
                double wj = param(c.w, c.wt, norm, j, 1), bj = param(c.b, c.bt, norm, j, 0);
                double scaled = (c.x[r * c.n + j] - m) * rs * wj, e = scaled + bj;
                // A few roundings of the scaled deviation and the bias, plus the statistics' error.
                double tol = 6 * u * (Math.abs(e) + Math.abs(bj) + Math.abs(scaled)) + 2 * stat * (Math.abs(scaled) + Math.abs(wj))
                        + Refs.tiny(t);
                Refs.assertNear(c.what + " y", r * c.n + j, e, y[r * c.n + j], tol, t);
            }
        }
    }

    @Property(tries = 150)
    void rmsNormMatchesReference(@ForAll("shapes") int[] shape, @ForAll long seed, @ForAll Presentation p,
                                 @ForAll("types") DType t, @ForAll boolean weight, @ForAll boolean nonFinite) {
        Case c = makeCase("rms_norm", shape, seed, p, t, weight, false, nonFinite, 0);
        double eps = 1e-6;
        Tensor y = F.rmsNormAxis(c.xt, c.axis, c.wt, eps);
        Refs.assertShape(c.what, shape, y);
        assertEquals(t, y.dtype());
        double[] got = TestTensors.values(y);
        int[] norm = Arrays.copyOfRange(shape, c.axis, shape.length);
        double u = Refs.unitRoundoff(t);
        for (int r = 0; r < c.rows; r++) {
            double sq = 0;
            for (int j = 0; j < c.n; j++) sq += c.x[r * c.n + j] * c.x[r * c.n + j];
            double rs = 1 / Math.sqrt(sq / c.n + eps);
            for (int j = 0; j < c.n; j++) {
                double e = c.x[r * c.n + j] * rs * param(c.w, c.wt, norm, j, 1);
                Refs.assertNear(c.what, r * c.n + j, e, got[r * c.n + j], (4 * u + 1e-6) * Math.abs(e) + Refs.tiny(t), t);
            }
        }
    }

    /** RMS norm's scalar twin, which a fresh JVM runs while the vector code is slower, gives the vector code's bits. */
    @Property(tries = 60)
    void rmsNormsScalarTwinGivesTheSameBits(@ForAll("shapes") int[] shape, @ForAll long seed, @ForAll Presentation p, @ForAll boolean weight) {
        Case c = makeCase("rms_norm", shape, seed, p, DType.FLOAT32, weight, false, false, 0);
        float[][] y = new float[2][];
        ScalarTwin.forcing(false, () -> y[0] = F.rmsNormAxis(c.xt, c.axis, c.wt, 1e-6).toFloatArray());
        ScalarTwin.forcing(true, () -> y[1] = F.rmsNormAxis(c.xt, c.axis, c.wt, 1e-6).toFloatArray());
        org.junit.jupiter.api.Assertions.assertArrayEquals(y[0], y[1], c.what);
    }

    @Test
    void largeMeanWithSmallSpreadKeepsItsVariance() {
        // float32 values 1000 + k/1024: exactly representable; the spread is 1e-3 of the mean.
        int n = 512;
        float[] f = new float[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            f[i] = 1000f + (i % 7) / 1024f;
            sum += f[i];
        }
        double mean = sum / n, var = 0;
        for (float v : f) var += (v - mean) * (v - mean);
        var /= n;
        Tensor[] out = F.layerNormWithStats(Tensor.of(f, 1, n), 1, null, null, 0);
        assertEquals(mean, out[1].getDouble(0), 1e-4);
        assertEquals(1 / Math.sqrt(var), out[2].getDouble(0), 1e-6 / Math.sqrt(var));
        double[] y = TestTensors.values(out[0]);
        for (int i = 0; i < n; i++) assertEquals((f[i] - mean) / Math.sqrt(var), y[i], 1e-5, "y " + i);
    }

    @Test
    void layerNormOfAConstantRowIsBiasAndRmsNormMatchesDefinition() {
        Tensor x = Tensor.of(new float[] {5, 5, 5, 5}, 1, 4);
        Tensor b = Tensor.of(new float[] {1, 2, 3, 4}, 4);
        double[] y = TestTensors.values(F.layerNorm(x, new int[] {4}, null, b, 1e-5));
        assertEquals(Arrays.toString(new double[] {1, 2, 3, 4}), Arrays.toString(y));
        Tensor r = F.rmsNorm(Tensor.of(new float[] {3, 4}, 2), new int[] {2}, Tensor.of(new float[] {2, 1}, 2), 0);
        double rms = Math.sqrt(12.5);
        assertEquals(3 / rms * 2, r.getDouble(0), 1e-6);
        assertEquals(4 / rms, r.getDouble(1), 1e-6);
    }

    @Test
    void rowsWithInfinityGiveNaN() {
        Tensor x = Tensor.of(new float[] {1, Float.POSITIVE_INFINITY, 2, 1, 2, 3}, 2, 3);
        Tensor[] out = F.layerNormWithStats(x, 1, null, null, 1e-5);
        double[] y = TestTensors.values(out[0]);
        for (int i = 0; i < 3; i++) assertTrue(Double.isNaN(y[i]), "y " + i);
        assertEquals(Double.POSITIVE_INFINITY, out[1].getDouble(0));
        assertEquals(2, out[1].getDouble(1), 1e-6);
    }
}
