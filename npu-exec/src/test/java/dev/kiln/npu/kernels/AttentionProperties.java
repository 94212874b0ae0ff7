package dev.kiln.npu.kernels;

import dev.kiln.nn.F;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.RandomDistribution;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** scaled_dot_product_attention against a naive double-precision softmax(q k^T scale + mask) v written here. */
class AttentionProperties {

    enum MaskKind { NONE, BOOL, FLOAT }

    /** An attention problem: shapes, the values (already rounded to the dtype), and the options. */
    record Problem(DType dtype, int[] qShape, int[] kShape, int[] vShape, int[] maskShape, MaskKind maskKind,
                   double[] q, double[] k, double[] v, double[] mask, boolean causal, Double scale, boolean gqa) {

        int queries() { return qShape[qShape.length - 2]; }
        int keys() { return kShape[kShape.length - 2]; }
        int headDim() { return qShape[qShape.length - 1]; }
        int valueDim() { return vShape[vShape.length - 1]; }
        int[] qBatch() { return Arrays.copyOf(qShape, qShape.length - 2); }
        int[] kBatch() { return Arrays.copyOf(kShape, kShape.length - 2); }

        Tensor run(Presentation pq, Presentation pk, Presentation pv, Presentation pm) {
            Tensor tq = TestTensors.tensor(q, dtype, pq, qShape);
            Tensor tk = TestTensors.tensor(k, dtype, pk, kShape);
            Tensor tv = TestTensors.tensor(v, dtype, pv, vShape);
            Tensor tm = switch (maskKind) {
                case NONE -> null;
                case BOOL -> TestTensors.tensor(mask, DType.BOOL, pm, maskShape);
                case FLOAT -> TestTensors.tensor(mask, dtype, pm, maskShape);
            };
            return F.scaledDotProductAttention(tq, tk, tv, tm, causal, scale, gqa);
        }

        Tensor run() { return run(Presentation.CONTIGUOUS, Presentation.CONTIGUOUS, Presentation.CONTIGUOUS, Presentation.CONTIGUOUS); }

        int[] outBatch() {
            int[] kb = kBatch();
            if (gqa && kb.length > 0 && qBatch().length > 0) kb[kb.length - 1] = qBatch()[qBatch().length - 1];
            return broadcast(qBatch(), kb);
        }

        int[] outShape() {
            int[] b = outBatch();
            int[] s = Arrays.copyOf(b, b.length + 2);
            s[b.length] = queries();
            s[b.length + 1] = valueDim();
            return s;
        }

        /** Whether key j is masked for query i in output slice {@code batch}: causal, a false bool, or a -inf float. */
        boolean masked(int[] batch, int i, int j) {
            if (causal && j > i) return true;
            if (maskKind == MaskKind.NONE) return false;
            double m = maskAt(batch, i, j);
            return maskKind == MaskKind.BOOL ? m == 0 : m == Double.NEGATIVE_INFINITY;
        }

        double maskAt(int[] batch, int i, int j) {
            int[] idx = Arrays.copyOf(batch, batch.length + 2);
            idx[batch.length] = i;
            idx[batch.length + 1] = j;
            return mask[(int) TestTensors.ravelBroadcast(idx, maskShape)];
        }

        int querySlice(int[] outBatchIndex) { return (int) TestTensors.ravelBroadcast(outBatchIndex, qBatch()); }

        /** Under GQA query head h reads KV head h / (Hq / Hkv); otherwise plain broadcasting. */
        int keySlice(int[] outBatchIndex) {
            int[] qb = qBatch(), kb = kBatch(), ki = outBatchIndex.clone();
            if (gqa && kb.length > 0 && qb.length > 0) ki[ki.length - 1] /= qb[qb.length - 1] / kb[kb.length - 1];
            return (int) TestTensors.ravelBroadcast(ki, kb);
        }

        /** The naive reference in double. */
        double[] reference() {
            int[] batch = outBatch();
            int slices = (int) Shape.of(batch).numel();
            int L = queries(), S = keys(), E = headDim(), Ev = valueDim();
            double s = scale != null ? scale : 1.0 / Math.sqrt(E);
            double[] out = new double[slices * L * Ev];
            for (int b = 0; b < slices; b++) {
                int[] bi = TestTensors.unravel(b, batch);
                int qSlice = querySlice(bi), kSlice = keySlice(bi);
                for (int i = 0; i < L; i++) {
                    double[] score = new double[S];
                    boolean[] off = new boolean[S];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < S; j++) {
                        off[j] = masked(bi, i, j);
                        if (off[j]) continue;
                        double dot = 0;
                        for (int e = 0; e < E; e++) dot += q[(qSlice * L + i) * E + e] * k[(kSlice * S + j) * E + e];
                        score[j] = E == 0 ? 0 : dot * s;
                        if (maskKind == MaskKind.FLOAT) score[j] += maskAt(bi, i, j);
                        max = Double.isNaN(score[j]) || Double.isNaN(max) ? Double.NaN : Math.max(max, score[j]);
                    }
                    if (max == Double.NEGATIVE_INFINITY) continue;
                    double sum = 0;
                    double[] row = new double[Ev];
                    for (int j = 0; j < S; j++) {
                        if (off[j]) continue;
                        double p = Math.exp(score[j] - max);
                        sum += p;
                        for (int c = 0; c < Ev; c++) row[c] += p * v[(kSlice * S + j) * Ev + c];
                    }
                    for (int c = 0; c < Ev; c++) out[(b * L + i) * Ev + c] = row[c] / sum;
                }
            }
            return out;
        }
    }

    static int[] broadcast(int[] a, int[] b) {
        int rank = Math.max(a.length, b.length);
        int[] out = new int[rank];
        for (int i = 1; i <= rank; i++) {
            int da = i <= a.length ? a[a.length - i] : 1, db = i <= b.length ? b[b.length - i] : 1;
            out[rank - i] = da == 1 ? db : da;
        }
        return out;
    }

    static double tolerance(DType t) {
        return switch (t) {
            case FLOAT64 -> 1e-10;
            case FLOAT32 -> 1e-4;
            case FLOAT16 -> 3e-3;
            default -> 2e-2;
        };
    }

    static double[] rounded(DType t, double[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) out[i] = TestTensors.roundTo(t, values[i]);
        return out;
    }

    /** Builds a random problem; {@code gqaRatio} 0 means plain broadcasting of batch dimensions. */
    static Problem problem(long seed, DType dtype, int L, int S, int E, int Ev, int gqaRatio, MaskKind maskKind,
                           boolean causal, boolean plantNonFinite) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] qBatch, kBatch;
        boolean gqa = gqaRatio > 0;
        if (gqa) {
            int batch = 1 + r.nextInt(2), kvHeads = 1 + r.nextInt(3);
            qBatch = new int[] {r.nextInt(3) == 0 ? 1 : batch, kvHeads * gqaRatio};
            kBatch = new int[] {r.nextInt(3) == 0 ? 1 : batch, kvHeads};
        } else {
            int[] batch = new int[r.nextInt(4)];
            for (int i = 0; i < batch.length; i++) batch[i] = 1 + r.nextInt(3);
            qBatch = TestTensors.broadcastPartner(batch, r.nextLong());
            kBatch = TestTensors.broadcastPartner(batch, r.nextLong());
        }
        int[] qShape = withMatrix(qBatch, L, E), kShape = withMatrix(kBatch, S, E), vShape = withMatrix(kBatch, S, Ev);
        double[] q = rounded(dtype, TestTensors.randomData(Shape.of(qShape).numel(), r.nextLong(), 1.5, false));
        double[] k = rounded(dtype, TestTensors.randomData(Shape.of(kShape).numel(), r.nextLong(), 1.5, false));
        double[] v = rounded(dtype, TestTensors.randomData(Shape.of(vShape).numel(), r.nextLong(), 2, false));
        Double scale = r.nextInt(3) == 0 ? (Double) ((r.nextDouble() * 2 - 1) * 0.6) : null;
        Problem plain = new Problem(dtype, qShape, kShape, vShape, null, MaskKind.NONE, q, k, v, null, false, scale, gqa);
        int[] maskShape = null;
        double[] mask = null;
        if (maskKind != MaskKind.NONE) {
            int[] scores = withMatrix(plain.outBatch(), L, S);
            maskShape = TestTensors.broadcastPartner(scores, r.nextLong());
            mask = randomMask(r, maskKind, maskShape, dtype);
        }
        Problem p = new Problem(dtype, qShape, kShape, vShape, maskShape, maskKind, q, k, v, mask,
                maskKind == MaskKind.NONE && causal, scale, gqa);
        if (plantNonFinite) plantInMasked(p, r);
        return p;
    }

    static int[] withMatrix(int[] batch, int rows, int cols) {
        int[] s = Arrays.copyOf(batch, batch.length + 2);
        s[batch.length] = rows;
        s[batch.length + 1] = cols;
        return s;
    }

    /** A mask with a random share of masked entries, some whole rows and columns masked. */
    static double[] randomMask(SplittableRandom r, MaskKind kind, int[] shape, DType dtype) {
        double keep = new double[] {0.15, 0.5, 0.9}[r.nextInt(3)];
        int rows = shape.length >= 2 ? shape[shape.length - 2] : 1, cols = shape.length >= 1 ? shape[shape.length - 1] : 1;
        boolean[] deadRow = new boolean[rows], deadCol = new boolean[cols];
        for (int i = 0; i < rows; i++) deadRow[i] = r.nextInt(6) == 0;
        for (int j = 0; j < cols; j++) deadCol[j] = r.nextInt(5) == 0;
        double[] m = new double[(int) Shape.of(shape).numel()];
        for (int x = 0; x < m.length; x++) {
            int j = cols == 0 ? 0 : x % cols, i = rows == 0 || cols == 0 ? 0 : (x / cols) % rows;
            boolean on = r.nextDouble() < keep && !(shape.length >= 2 && deadRow[i]) && !(shape.length >= 1 && deadCol[j]);
            if (kind == MaskKind.BOOL) m[x] = on ? 1 : 0;
            else m[x] = on ? TestTensors.roundTo(dtype, (r.nextDouble() * 2 - 1) * 3) : Double.NEGATIVE_INFINITY;
        }
        return m;
    }

    /**
     * Puts NaN and infinities into every key and value position that no query of any
     * slice sees, and NaN into every query row that sees no key: none may reach the output.
     */
    static void plantInMasked(Problem p, SplittableRandom r) {
        int[] batch = p.outBatch();
        int slices = (int) Shape.of(batch).numel(), L = p.queries(), S = p.keys(), E = p.headDim(), Ev = p.valueDim();
        boolean[] keySeen = new boolean[(int) Shape.of(p.kBatch()).numel() * S];
        boolean[] querySees = new boolean[(int) Shape.of(p.qBatch()).numel() * L];
        for (int b = 0; b < slices; b++) {
            int[] bi = TestTensors.unravel(b, batch);
            int qs = p.querySlice(bi), ks = p.keySlice(bi);
            for (int i = 0; i < L; i++) {
                for (int j = 0; j < S; j++) {
                    if (!p.masked(bi, i, j)) keySeen[ks * S + j] = querySees[qs * L + i] = true;
                }
            }
        }
        for (int x = 0; x < keySeen.length; x++) {
            if (keySeen[x]) continue;
            for (int e = 0; e < E; e++) p.k()[x * E + e] = nonFinite(r);
            for (int c = 0; c < Ev; c++) p.v()[x * Ev + c] = nonFinite(r);
        }
        for (int x = 0; x < querySees.length; x++) {
            if (!querySees[x]) for (int e = 0; e < E; e++) p.q()[x * E + e] = Double.NaN;
        }
    }

    static double nonFinite(SplittableRandom r) {
        return switch (r.nextInt(3)) {
            case 0 -> Double.NaN;
            case 1 -> Double.POSITIVE_INFINITY;
            default -> Double.NEGATIVE_INFINITY;
        };
    }

    @Provide
    Arbitrary<Integer> headSizes() {
        return Arbitraries.oneOf(Arbitraries.of(1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 40, 64, 80, 96),
                Arbitraries.integers().between(1, 100).withDistribution(RandomDistribution.uniform()));
    }

    /** Sequence lengths: a few tiny ones (0 and 1 included), mostly spread up to {@code max} to cross block edges. */
    static Arbitrary<Integer> lengths(int max) {
        return Arbitraries.frequencyOf(
                Tuple.of(1, Arbitraries.integers().between(0, 3)),
                Tuple.of(3, Arbitraries.integers().between(0, max).withDistribution(RandomDistribution.uniform())));
    }

    @Provide
    Arbitrary<Integer> queryLengths() { return lengths(70); }

    @Provide
    Arbitrary<Integer> keyLengths() { return lengths(110); }

    @Provide
    Arbitrary<DType> floatTypes() {
        return Arbitraries.frequency(
                Tuple.of(5, DType.FLOAT32), Tuple.of(2, DType.FLOAT64),
                Tuple.of(1, DType.FLOAT16), Tuple.of(1, DType.BFLOAT16));
    }

    @Provide
    Arbitrary<Integer> gqaRatios() { return Arbitraries.of(0, 0, 1, 2, 4); }

    @Property(tries = 150)
    void matchesReference(@ForAll("queryLengths") int queries, @ForAll("keyLengths") int keys,
                          @ForAll("headSizes") int headDim, @ForAll("headSizes") int valueDim,
                          @ForAll("gqaRatios") int gqaRatio, @ForAll MaskKind maskKind, @ForAll boolean causal,
                          @ForAll("floatTypes") DType dtype, @ForAll boolean plantNonFinite, @ForAll long seed) {
        Problem p = problem(seed, dtype, queries, keys, headDim, valueDim, gqaRatio, maskKind, causal, plantNonFinite);
        Presentation[] all = Presentation.values();
        SplittableRandom r = new SplittableRandom(seed ^ 0x5eed);
        Tensor out = p.run(all[r.nextInt(4)], all[r.nextInt(4)], all[r.nextInt(4)], all[r.nextInt(4)]);
        double tol = tolerance(dtype);
        TestTensors.assertClose("sdpa " + dtype + " q" + Arrays.toString(p.qShape()) + " k" + Arrays.toString(p.kShape())
                        + " v" + Arrays.toString(p.vShape()) + " mask " + p.maskKind() + Arrays.toString(p.maskShape())
                        + " causal " + p.causal() + " gqa " + p.gqa(),
                Shape.of(p.outShape()), p.reference(), out, tol, tol);
        assertEquals(dtype, out.dtype());
    }

    @Property(tries = 40)
    void layoutDoesNotChangeTheResult(@ForAll @IntRange(min = 1, max = 40) int queries, @ForAll @IntRange(min = 1, max = 50) int keys,
                                      @ForAll("headSizes") int headDim, @ForAll MaskKind maskKind, @ForAll boolean causal,
                                      @ForAll long seed) {
        Problem p = problem(seed, DType.FLOAT32, queries, keys, headDim, headDim, 0, maskKind, causal, false);
        double[] contiguous = TestTensors.values(p.run());
        Tensor strided = p.run(Presentation.TRANSPOSED, Presentation.STRIDED, Presentation.OFFSET, Presentation.TRANSPOSED);
        assertArrayEquals(contiguous, TestTensors.values(strided));
    }

    // ------------------------------------------------------------------ examples

    @Test
    void causalWithMoreKeysThanQueriesIsTopLeftAligned() {
        Problem p = problem(1, DType.FLOAT32, 5, 9, 8, 8, 0, MaskKind.NONE, true, false);
        TestTensors.assertClose("causal L<S", Shape.of(p.outShape()), p.reference(), p.run(), 1e-5, 1e-5);
        double[] out = TestTensors.values(p.run());
        // Row 0 sees only key 0: its output is exactly v[0].
        for (int c = 0; c < 8; c++) assertEquals((float) p.v()[c], out[c], 1e-6);
    }

    @Test
    void causalWithMoreQueriesThanKeys() {
        Problem p = problem(2, DType.FLOAT64, 150, 20, 16, 24, 0, MaskKind.NONE, true, true);
        TestTensors.assertClose("causal L>S", Shape.of(p.outShape()), p.reference(), p.run(), 1e-10, 1e-10);
        Problem f = problem(2, DType.FLOAT32, 150, 20, 16, 24, 0, MaskKind.NONE, true, true);
        TestTensors.assertClose("causal L>S float32", Shape.of(f.outShape()), f.reference(), f.run(), 1e-4, 1e-4);
    }

    @Test
    void longSequencesCrossQueryAndKeyBlocks() {
        for (int e : new int[] {1, 40, 64, 80, 96, 128}) {
            Problem p = problem(3 + e, DType.FLOAT32, 130, 300, e, 72, 2, MaskKind.NONE, true, false);
            TestTensors.assertClose("long causal E=" + e, Shape.of(p.outShape()), p.reference(), p.run(), 1e-4, 1e-4);
            Problem m = problem(4 + e, DType.FLOAT32, 70, 290, e, 40, 0, MaskKind.FLOAT, false, true);
            TestTensors.assertClose("long masked E=" + e, Shape.of(m.outShape()), m.reference(), m.run(), 1e-4, 1e-4);
        }
    }

    @Test
    void fullyMaskedRowsAreZeroEvenWithNonFiniteKeysAndValues() {
        for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            double nan = Double.NaN, inf = Double.POSITIVE_INFINITY;
            // q [1, 2, 3]: row 0 fully masked; row 1 sees key 1 only.
            Tensor q = TestTensors.tensor(new double[] {nan, 1, 2, 0.5, -1, 1}, t, 1, 2, 3);
            Tensor k = TestTensors.tensor(new double[] {inf, nan, 1, 0.2, 0.3, 0.4}, t, 1, 2, 3);
            Tensor v = TestTensors.tensor(new double[] {nan, -inf, 3, 4}, t, 1, 2, 2);
            Tensor mask = TestTensors.tensor(new double[] {0, 0, 0, 1}, DType.BOOL, 2, 2);
            Tensor out = F.scaledDotProductAttention(q, k, v, mask, false, null, false);
            assertArrayEquals(new double[] {0, 0, 3, 4}, TestTensors.values(out), t + " bool mask");
            Tensor floatMask = TestTensors.tensor(new double[] {-inf, -inf, -inf, 0.25}, t, 2, 2);
            Tensor out2 = F.scaledDotProductAttention(q, k, v, floatMask, false, null, false);
            assertArrayEquals(new double[] {0, 0, 3, 4}, TestTensors.values(out2), t + " float mask");
        }
    }

    @Test
    void nanInAnUnmaskedScorePropagatesToItsRowOnly() {
        for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
            Tensor q = TestTensors.tensor(new double[] {Double.NaN, 1, 0.5, -1}, t, 2, 2);
            Tensor k = TestTensors.tensor(new double[] {1, 2, 3, 4, 5, 6}, t, 3, 2);
            Tensor v = TestTensors.tensor(new double[] {1, 2, 3}, t, 3, 1);
            double[] out = TestTensors.values(F.scaledDotProductAttention(q, k, v));
            assertTrue(Double.isNaN(out[0]), t + ": row with a NaN score");
            assertTrue(Double.isFinite(out[1]), t + ": other row");
            // Row 1 meets key 2 with score 0.5 * inf - 6 = +inf: its softmax is NaN, as in PyTorch.
            Tensor kInf = TestTensors.tensor(new double[] {1, 2, 3, 4, Double.POSITIVE_INFINITY, 6}, t, 3, 2);
            double[] outInf = TestTensors.values(F.scaledDotProductAttention(q, kInf, v));
            assertTrue(Double.isNaN(outInf[1]), t + ": row with a +inf score");
            // A -inf score among finite ones simply gets weight zero.
            Tensor kNegInf = TestTensors.tensor(new double[] {1, 2, 3, 4, Double.NEGATIVE_INFINITY, 6}, t, 3, 2);
            double[] outNegInf = TestTensors.values(F.scaledDotProductAttention(q, kNegInf, v));
            assertTrue(Double.isFinite(outNegInf[1]), t + ": row with a -inf score");
        }
    }

    @Test
    void emptyHeadDimensionAveragesTheValues() {
        Tensor q = TestTensors.tensor(new double[0], DType.FLOAT32, 2, 0);
        Tensor k = TestTensors.tensor(new double[0], DType.FLOAT32, 3, 0);
        Tensor v = TestTensors.tensor(new double[] {1, 2, 3, 4, 5, 6}, DType.FLOAT32, 3, 2);
        // PyTorch: the scores are an empty sum (0) even though the default scale 1/sqrt(0) is infinite.
        assertArrayEquals(new double[] {3, 4, 3, 4}, TestTensors.values(F.scaledDotProductAttention(q, k, v)), 1e-6);
        Tensor empty = F.scaledDotProductAttention(q, TestTensors.tensor(new double[0], DType.FLOAT32, 0, 0),
                TestTensors.tensor(new double[0], DType.FLOAT32, 0, 2));
        assertArrayEquals(new double[] {0, 0, 0, 0}, TestTensors.values(empty), "no keys at all: zeros");
    }

    @Test
    void maskWithCausalIsRejected() {
        Tensor q = TestTensors.tensor(new double[4], DType.FLOAT32, 2, 2);
        Tensor mask = TestTensors.tensor(new double[] {1, 1, 1, 1}, DType.BOOL, 2, 2);
        KilnShapeException e = assertThrows(KilnShapeException.class,
                () -> F.scaledDotProductAttention(q, q, q, mask, true, null, false));
        assertEquals("scaled_dot_product_attention: attn_mask and is_causal cannot both be set (PyTorch raises the same);"
                + " fold the causal mask into attn_mask", e.getMessage());
    }

    @Test
    void gqaHeadsMustDivide() {
        Tensor q = TestTensors.tensor(new double[6 * 2 * 4], DType.FLOAT32, 6, 2, 4);
        Tensor kv = TestTensors.tensor(new double[4 * 2 * 4], DType.FLOAT32, 4, 2, 4);
        KilnShapeException e = assertThrows(KilnShapeException.class,
                () -> F.scaledDotProductAttention(q, kv, kv, null, false, null, true));
        assertEquals("scaled_dot_product_attention: with enable_gqa the query heads (dimension -3: 6) must be a multiple"
                + " of the key/value heads (4)", e.getMessage());
        KilnShapeException noGqa = assertThrows(KilnShapeException.class, () -> F.scaledDotProductAttention(q, kv, kv));
        assertTrue(noGqa.getMessage().startsWith("scaled_dot_product_attention: shapes"), noGqa.getMessage());
    }

    @Test
    void floatMaskOfAnotherDtypeIsRejected() {
        Tensor q = TestTensors.tensor(new double[4], DType.FLOAT32, 2, 2);
        Tensor mask = TestTensors.tensor(new double[4], DType.FLOAT64, 2, 2);
        KilnTypeException e = assertThrows(KilnTypeException.class,
                () -> F.scaledDotProductAttention(q, q, q, mask, false, null, false));
        assertEquals("scaled_dot_product_attention: attn_mask must be bool or of the query dtype float32, got float64", e.getMessage());
    }
}
