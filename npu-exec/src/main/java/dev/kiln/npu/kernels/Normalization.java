package dev.kiln.npu.kernels;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.StridedIndex;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * softmax, log_softmax, layer_norm, rms_norm: each works row by row, a row being the
 * softmax dimension or the normalised trailing dimensions. float32, float16 and
 * bfloat16 compute in float32 with vectorised loops ({@link FloatRuns}), working in
 * place on float32 rows that are contiguous and otherwise through a scratch row
 * (converting half types on the way in and rounding on the way out); float64 computes
 * in double. Rows are spread over the workers.
 */
public final class Normalization {
    private Normalization() {}

    /**
     * softmax or (with {@code op.log()}) log_softmax along {@code op.dim()}, stable for any
     * magnitude: the row maximum m is subtracted first, softmax = exp(x - m) / sum and
     * log_softmax = (x - m) - log(sum). A row holding NaN or +inf, or only -inf, becomes
     * all NaN, as in PyTorch. float32 uses {@link VectorMath#exp} (1.5 ulp); as in PyTorch,
     * x - m is rounded to float first, which adds a relative error of up to
     * |x - m| 2^-25 (at most ~3e-6, for the tiniest probabilities).
     */
    public static void softmax(Op.Softmax op, Tensor x, Tensor out) {
        Rows rows = Rows.along(x.layout(), out.layout().strides(), out.layout().offset(), op.dim());
        int n = rows.length();
        boolean log = op.log();
        long cost = rows.count() * n * 24;
        if (x.dtype() == DType.FLOAT64) {
            forEachDoubleRow(rows, x, out, cost, (row, r) -> softmaxRow(row, log));
        } else if (x.dtype() == DType.FLOAT32 && !rows.inDense() && rows.adjacentRows() >= FloatRuns.LANES) {
            softmaxAcross(rows, x, out, log, cost);
        } else {
            forEachFloatRow(rows, x, out, cost, null, (src, srcOff, dst, dstOff, r, scalar) -> {
                float max = FloatRuns.extreme(src, srcOff, n, true);
                if (log) {
                    double sum = FloatRuns.expShifted(src, srcOff, null, 0, n, max);
                    FloatRuns.subtractTwice(src, srcOff, dst, dstOff, n, max, (float) Math.log(sum));
                } else {
                    double sum = FloatRuns.expShifted(src, srcOff, dst, dstOff, n, max);
                    FloatRuns.scale(dst, dstOff, dst, dstOff, n, (float) (1 / sum));
                }
            });
        }
    }

    private static final int TILE = FloatRuns.TILE, FLUSH = FloatRuns.FLUSH;
    private static final java.nio.ByteOrder ORDER = java.nio.ByteOrder.nativeOrder();

    /**
     * float32 softmax along a dimension whose rows lie side by side (softmax over dim 0 of
     * [N, C]): rather than gathering each strided row, a task takes a tile of adjacent rows
     * and walks the softmax dimension once per pass with whole vectors across the tile,
     * keeping per-row maxima and sums in lanes. Same arithmetic as the row path, with the
     * exp sums flushed into doubles every {@link #FLUSH} steps.
     */
    private static void softmaxAcross(Rows rows, Tensor x, Tensor out, boolean log, long cost) {
        MemorySegment xs = x.storage().segment(), os = out.storage().segment();
        int n = rows.length(), adjacent = rows.adjacentRows(), tiles = (adjacent + TILE - 1) / TILE;
        long inStride = rows.inStride(), outStride = rows.outStride();
        Parallel.forRange(rows.count() / adjacent * tiles, cost, (from, to) -> {
            float[] lanes = new float[TILE], max = new float[TILE];
            double[] sums = new double[TILE];
            for (long g = from; g < to; g++) {
                Odometer w = rows.groupWalker(g / tiles);
                int first = (int) (g % tiles) * TILE;
                softmaxTile(xs, w.a() + first, inStride, os, w.b() + first, outStride, n,
                        Math.min(TILE, adjacent - first), log, lanes, max, sums);
            }
        });
    }

    private static void softmaxTile(MemorySegment xs, long in, long inStride, MemorySegment os, long out, long outStride,
                                    int n, int width, boolean log, float[] lanes, float[] max, double[] sums) {
        Arrays.fill(max, Float.NEGATIVE_INFINITY);
        for (int i = 0; i < n; i++) FloatRuns.tileMax(xs, in + i * inStride, width, max);
        Arrays.fill(lanes, 0f);
        Arrays.fill(sums, 0);
        for (int i = 0; i < n; i++) {
            expStep(xs, in + i * inStride, log ? null : os, out + i * outStride, width, max, lanes);
            if ((i + 1) % FLUSH == 0 || i == n - 1) {
                for (int v = 0; v < width; v++) sums[v] += lanes[v];
                Arrays.fill(lanes, 0f);
            }
        }
        // lanes now holds, per row, log(sum) (log_softmax) or the factor 1/sum (softmax).
        for (int v = 0; v < width; v++) lanes[v] = (float) (log ? Math.log(sums[v]) : 1 / sums[v]);
        for (int i = 0; i < n; i++) {
            if (log) logStep(xs, in + i * inStride, os, out + i * outStride, width, max, lanes);
            else scaleStep(os, out + i * outStride, width, lanes);
        }
    }

    // Steps over one position of the softmax dimension across a tile of rows: small and
    // masked, for the reasons given at FloatRuns.tileMax.

    /** Adds exp(x - max) into {@code sums} and, when {@code os} is non-null, stores it there. */
    private static void expStep(MemorySegment xs, long row, MemorySegment os, long dst, int width, float[] max, float[] sums) {
        for (int v = 0; v < width; v += FloatRuns.LANES) {
            VectorMask<Float> m = FloatRuns.SPECIES.indexInRange(v, width);
            FloatVector e = VectorMath.exp(FloatRuns.load(xs, row + v, m).sub(FloatVector.fromArray(FloatRuns.SPECIES, max, v)));
            if (os != null) e.intoMemorySegment(os, (dst + v) * 4, ORDER, m);
            FloatVector.fromArray(FloatRuns.SPECIES, sums, v).add(e).intoArray(sums, v);
        }
    }

    private static void scaleStep(MemorySegment os, long dst, int width, float[] factors) {
        for (int v = 0; v < width; v += FloatRuns.LANES) {
            VectorMask<Float> m = FloatRuns.SPECIES.indexInRange(v, width);
            FloatRuns.load(os, dst + v, m).mul(FloatVector.fromArray(FloatRuns.SPECIES, factors, v))
                    .intoMemorySegment(os, (dst + v) * 4, ORDER, m);
        }
    }

    private static void logStep(MemorySegment xs, long row, MemorySegment os, long dst, int width, float[] max, float[] logSums) {
        for (int v = 0; v < width; v += FloatRuns.LANES) {
            VectorMask<Float> m = FloatRuns.SPECIES.indexInRange(v, width);
            FloatRuns.load(xs, row + v, m).sub(FloatVector.fromArray(FloatRuns.SPECIES, max, v))
                    .sub(FloatVector.fromArray(FloatRuns.SPECIES, logSums, v))
                    .intoMemorySegment(os, (dst + v) * 4, ORDER, m);
        }
    }

    private static void softmaxRow(double[] row, boolean log) {
        double max = Double.NEGATIVE_INFINITY;
        for (double v : row) max = Math.max(max, v);
        double sum = 0;
        for (int i = 0; i < row.length; i++) {
            double e = Math.exp(row[i] - max);
            sum += e;
            if (!log) row[i] = e;
        }
        double logSum = Math.log(sum);
        for (int i = 0; i < row.length; i++) row[i] = log ? (row[i] - max) - logSum : row[i] / sum;
    }

    /**
     * Layer normalisation over dimensions {@code op.axis()..}: outputs y, the mean and the
     * inverse standard deviation {@code 1/sqrt(var + eps)} with the biased variance, the
     * statistics shaped as x with the normalised dimensions set to 1. Weight and bias
     * broadcast to the normalised shape. Rows of no elements have NaN statistics.
     *
     * <p>float32 statistics use the corrected two-pass method: a first blocked sum (see
     * {@link FloatRuns}) gives a mean rounded to float, m; the second pass sums d = x - m
     * and d^2, giving mean = m + E[d] and var = E[d^2] - E[d]^2. The deviations are small,
     * so both are accurate to ~1e-7 of the spread even when the mean is large next to it.
     * y subtracts the mean as m and then E[d] (two floats) for the same reason.
     */
    public static void layerNorm(Op.LayerNorm op, Tensor[] in, Tensor[] out) {
        Tensor x = in[0];
        Tensor weight = op.hasWeight() ? in[1] : null;
        Tensor bias = op.hasBias() ? in[op.hasWeight() ? 2 : 1] : null;
        Rows rows = normRows(x, out[0], op.axis());
        int n = rows.length();
        Shape normShape = normalizedShape(x, op.axis());
        double eps = op.eps();
        DType t = x.dtype();
        MemorySegment meanOut = out[1].storage().segment(), rstdOut = out[2].storage().segment();
        long meanBase = out[1].layout().offset(), rstdBase = out[2].layout().offset();
        long cost = rows.count() * n * 6;
        double[] w = paramRow(weight, normShape, 1), b = paramRow(bias, normShape, 0);
        if (t == DType.FLOAT64) {
            forEachDoubleRow(rows, x, out[0], cost, (row, r) -> {
                double mean = 0;
                for (double v : row) mean += v;
                mean /= n;
                double var = 0;
                for (double v : row) var += (v - mean) * (v - mean);
                var /= n;
                double rstd = 1 / Math.sqrt(var + eps);
                for (int i = 0; i < n; i++) row[i] = (row[i] - mean) * rstd * w[i] + b[i];
                Elements.write(t, meanOut, meanBase + r, mean);
                Elements.write(t, rstdOut, rstdBase + r, rstd);
            });
            return;
        }
        float[] wf = toFloats(w), bf = toFloats(b);
        forEachFloatRow(rows, x, out[0], cost, null, (src, srcOff, dst, dstOff, r, scalar) -> {
            double rough = FloatRuns.sum(src, srcOff, n) / n;
            float hi = (float) rough;
            double[] m = new double[2];
            FloatRuns.moments(src, srcOff, n, hi, m);
            // Deviations from hi are small, so their mean refines the first pass's mean to
            // well below its own float rounding; it is hi's correction for y as well.
            double correction = m[0] / n;
            double mean = Float.isFinite(hi) ? hi + correction : rough;
            double var = Math.max(m[1] / n - correction * correction, 0);
            double rstd = 1 / Math.sqrt(var + eps);
            FloatRuns.normalize(src, srcOff, dst, dstOff, n, hi, (float) correction, (float) rstd, wf, bf);
            Elements.write(t, meanOut, meanBase + r, mean);
            Elements.write(t, rstdOut, rstdBase + r, rstd);
        });
    }

    /**
     * RMS normalisation over dimensions {@code op.axis()..}:
     * {@code y = x / sqrt(mean(x^2) + eps) * weight}, the weight broadcast to the normalised
     * shape; the mean of squares is a blocked float sum carried in double.
     */
    public static void rmsNorm(Op.RmsNorm op, Tensor[] in, Tensor out) {
        Tensor x = in[0];
        Rows rows = normRows(x, out, op.axis());
        int n = rows.length();
        double eps = op.eps();
        double[] w = paramRow(op.hasWeight() ? in[1] : null, normalizedShape(x, op.axis()), 1);
        long cost = rows.count() * n * 4;
        if (x.dtype() == DType.FLOAT64) {
            forEachDoubleRow(rows, x, out, cost, (row, r) -> {
                double squares = 0;
                for (double v : row) squares += v * v;
                double rstd = 1 / Math.sqrt(squares / n + eps);
                for (int i = 0; i < n; i++) row[i] = row[i] * rstd * w[i];
            });
            return;
        }
        float[] wf = toFloats(w), zeros = new float[n];
        forEachFloatRow(rows, x, out, cost, RMS_NORM_TWIN, (src, srcOff, dst, dstOff, r, scalar) -> {
            double[] m = new double[2];
            if (scalar && n > 0) {
                float[] row = new float[n];
                MemorySegment.copy(src, Staging.F32, srcOff * Float.BYTES, row, 0, n);
                FloatRuns.momentsScalar(row, n, 0f, m);
                FloatRuns.normalizeScalar(row, row, n, 0f, 0f, (float) (1 / Math.sqrt(m[1] / n + eps)), wf, zeros);
                MemorySegment.copy(row, 0, dst, Staging.F32, dstOff * Float.BYTES, n);
                return;
            }
            FloatRuns.moments(src, srcOff, n, 0f, m);
            double rstd = 1 / Math.sqrt(m[1] / n + eps);
            FloatRuns.normalize(src, srcOff, dst, dstOff, n, 0f, 0f, (float) rstd, wf, zeros);
        });
    }

    /**
     * RMS norm's rows run scalar while its vector loops are slower (see {@link ScalarTwin}): in a
     * fresh JVM the W4 block's two RMS norms took 55 to 65 ms of its first call.
     */
    private static final ScalarTwin RMS_NORM_TWIN = new ScalarTwin();

    // ---------------------------------------------------------------- shared row machinery

    private static Rows normRows(Tensor x, Tensor y, int axis) {
        boolean[] rowDims = new boolean[x.rank()];
        Arrays.fill(rowDims, axis, x.rank(), true);
        return new Rows(x.layout(), y.layout().strides(), y.layout().offset(), rowDims);
    }

    private static Shape normalizedShape(Tensor x, int axis) {
        return Shape.of(Arrays.copyOfRange(x.shape().dims(), axis, x.rank()));
    }

    /** A weight or bias broadcast to the normalised shape, row-major; {@code fill} everywhere when absent. */
    private static double[] paramRow(Tensor p, Shape normShape, double fill) {
        double[] v = new double[Math.toIntExact(normShape.numel())];
        if (p == null) {
            Arrays.fill(v, fill);
            return v;
        }
        int[] dims = normShape.dims();
        long[] strides = StridedIndex.broadcastStrides(p.layout(), normShape);
        MemorySegment s = p.storage().segment();
        for (int i = 0; i < v.length; i++) {
            v[i] = Elements.read(p.dtype(), s, StridedIndex.offset(dims, strides, p.layout().offset(), i));
        }
        return v;
    }

    private static float[] toFloats(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
        return f;
    }

    /**
     * Computes one float32 row from {@code src} into {@code dst} (possibly the same run); r is the
     * row's index; {@code scalar} asks for the scalar twin of the vector code.
     */
    @FunctionalInterface
    private interface FloatRow {
        void compute(MemorySegment src, long srcOff, MemorySegment dst, long dstOff, long r, boolean scalar);
    }

    /** Transforms one float64 row in place; r is the row's index. */
    @FunctionalInterface
    private interface DoubleRow {
        void compute(double[] row, long r);
    }

    /**
     * Runs {@code body} on every row of x (float32, float16 or bfloat16) with the output
     * row in out: directly on float32 storage when the row is contiguous there, else
     * through a float32 scratch row. With a {@code twin}, each chunk of rows runs the body's
     * scalar code or its vector code as the twin chooses.
     */
    private static void forEachFloatRow(Rows rows, Tensor x, Tensor out, long cost, ScalarTwin twin, FloatRow body) {
        DType t = x.dtype();
        MemorySegment xs = x.storage().segment(), os = out.storage().segment();
        boolean directIn = t == DType.FLOAT32 && rows.inDense(), directOut = t == DType.FLOAT32 && rows.outDense();
        int n = rows.length();
        Parallel.forRange(rows.count(), cost, (from, to) -> {
            boolean choosing = twin != null && !twin.settled();
            long work = (to - from) * n, start = System.nanoTime();
            boolean scalar = choosing && twin.scalarNext(work);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment scratch = directIn && directOut ? null : arena.allocate(4L * Math.max(n, 1), 64);
                Odometer w = rows.walker(from);
                for (long r = from; r < to; r++, w.next()) {
                    if (!directIn) rows.gatherFloats(xs, t, w.a(), scratch);
                    body.compute(directIn ? xs : scratch, directIn ? w.a() : 0,
                            directOut ? os : scratch, directOut ? w.b() : 0, r, scalar);
                    if (!directOut) rows.scatterFloats(scratch, os, t, w.b());
                }
            }
            if (choosing) twin.record(scalar, System.nanoTime() - start, work);
        });
    }

    /** Runs {@code body} on every row of a float64 x, gathered into an array and written back to out. */
    private static void forEachDoubleRow(Rows rows, Tensor x, Tensor out, long cost, DoubleRow body) {
        MemorySegment xs = x.storage().segment(), os = out.storage().segment();
        Parallel.forRange(rows.count(), cost, (from, to) -> {
            double[] row = new double[rows.length()];
            Odometer w = rows.walker(from);
            for (long r = from; r < to; r++, w.next()) {
                rows.gatherDoubles(xs, DType.FLOAT64, w.a(), row);
                body.compute(row, r);
                rows.scatterDoubles(row, os, DType.FLOAT64, w.b());
            }
        });
    }
}
