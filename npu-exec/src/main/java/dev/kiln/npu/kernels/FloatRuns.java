package dev.kiln.npu.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Vectorised float32 loops over contiguous runs of memory (offsets and lengths in
 * elements): the inner loops of reductions, softmax and the normalisations.
 *
 * <p>Sums keep four vector accumulators (independent chains, so the adds pipeline)
 * and flush them into a double every {@link #FLUSH} adds per lane. Each float partial
 * thus sums a bounded number of values, and the error of a sum of n values grows
 * like that of a double sum of n / (lanes * 4 * FLUSH) blocks: about 1e-7 relative
 * for a million positive floats, where a single float accumulator loses ~1e-4.
 */
final class FloatRuns {
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    static final int LANES = SPECIES.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final int UNROLL = 4 * LANES;
    /** Adds per lane before a float partial is flushed into a double total. */
    static final int FLUSH = 64;
    /** Width of a tile of adjacent outputs that one task reduces across (see tileAdd). */
    static final int TILE = 16 * LANES;

    private FloatRuns() {}

    static FloatVector load(MemorySegment s, long i) {
        return FloatVector.fromMemorySegment(SPECIES, s, i * 4, ORDER);
    }

    static FloatVector load(MemorySegment s, long i, VectorMask<Float> m) {
        return FloatVector.fromMemorySegment(SPECIES, s, i * 4, ORDER, m);
    }

    static float get(MemorySegment s, long i) {
        return s.getAtIndex(ValueLayout.JAVA_FLOAT, i);
    }

    static void set(MemorySegment s, long i, float v) {
        s.setAtIndex(ValueLayout.JAVA_FLOAT, i, v);
    }

    /** Sum of {@code n} floats from {@code off}, accumulated as the class comment describes. */
    static double sum(MemorySegment s, long off, long n) {
        double total = -0.0; // the additive identity that also keeps the sign of a lone -0.0
        long i = 0, vecEnd = n - n % UNROLL;
        while (i < vecEnd) {
            long blockEnd = Math.min(vecEnd, i + (long) FLUSH * UNROLL);
            FloatVector a0 = FloatVector.zero(SPECIES), a1 = a0, a2 = a0, a3 = a0;
            for (; i < blockEnd; i += UNROLL) {
                long p = off + i;
                a0 = a0.add(load(s, p));
                a1 = a1.add(load(s, p + LANES));
                a2 = a2.add(load(s, p + 2L * LANES));
                a3 = a3.add(load(s, p + 3L * LANES));
            }
            total += Lanes.sum(a0.add(a1).add(a2.add(a3)));
        }
        for (; i < n; i++) total += get(s, off + i);
        return total;
    }

    /**
     * Sums of {@code d = x - shift} and of {@code d * d} over a run, into {@code out[0]}
     * and {@code out[1]}: the second pass of a two-pass variance, or (shift 0) the sum of squares.
     */
    static void moments(MemorySegment s, long off, long n, float shift, double[] out) {
        double s1 = 0, s2 = 0;
        FloatVector c = FloatVector.broadcast(SPECIES, shift);
        long i = 0, step = 2L * LANES, vecEnd = n - n % step;
        while (i < vecEnd) {
            long blockEnd = Math.min(vecEnd, i + (long) FLUSH * step);
            FloatVector d0 = FloatVector.zero(SPECIES), d1 = d0, q0 = d0, q1 = d0;
            for (; i < blockEnd; i += step) {
                FloatVector x0 = load(s, off + i).sub(c), x1 = load(s, off + i + LANES).sub(c);
                d0 = d0.add(x0);
                d1 = d1.add(x1);
                q0 = x0.fma(x0, q0);
                q1 = x1.fma(x1, q1);
            }
            s1 += Lanes.sum(d0.add(d1));
            s2 += Lanes.sum(q0.add(q1));
        }
        for (; i < n; i++) {
            float d = get(s, off + i) - shift;
            s1 += d;
            s2 += (double) d * d;
        }
        out[0] = s1;
        out[1] = s2;
    }

    /**
     * {@link #moments} a float at a time, for a scalar twin ({@link ScalarTwin}): the same
     * operations on the same lanes in the same order, so the same bits, over {@code x} (the run
     * copied to the heap).
     */
    static void momentsScalar(float[] x, int n, float shift, double[] out) {
        double s1 = 0, s2 = 0;
        int step = 2 * LANES, vecEnd = n - n % step, i = 0;
        // Lane j of the first vector accumulator is [j], of the second [LANES + j].
        float[] d = new float[step], q = new float[step];
        while (i < vecEnd) {
            int blockEnd = Math.min(vecEnd, i + FLUSH * step);
            java.util.Arrays.fill(d, 0f);
            java.util.Arrays.fill(q, 0f);
            for (; i < blockEnd; i += step) {
                for (int j = 0; j < step; j++) {
                    float v = x[i + j] - shift;
                    d[j] += v;
                    q[j] = Math.fma(v, v, q[j]);
                }
            }
            float sd = 0f, sq = 0f;
            for (int j = 0; j < LANES; j++) {
                sd += d[j] + d[LANES + j];
                sq += q[j] + q[LANES + j];
            }
            s1 += sd;
            s2 += sq;
        }
        for (; i < n; i++) {
            float v = x[i] - shift;
            s1 += v;
            s2 += (double) v * v;
        }
        out[0] = s1;
        out[1] = s2;
    }

    /** Maximum (or minimum) of a run, NaN if any element is NaN; -inf (+inf) for an empty run. */
    static float extreme(MemorySegment s, long off, long n, boolean max) {
        float init = max ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY;
        FloatVector a0 = FloatVector.broadcast(SPECIES, init), a1 = a0;
        long i = 0, step = 2L * LANES, vecEnd = n - n % step;
        // Vector MAX/MIN follow Math.max/min: NaN in any lane propagates.
        for (; i < vecEnd; i += step) {
            FloatVector x0 = load(s, off + i), x1 = load(s, off + i + LANES);
            a0 = max ? a0.lanewise(VectorOperators.MAX, x0) : a0.lanewise(VectorOperators.MIN, x0);
            a1 = max ? a1.lanewise(VectorOperators.MAX, x1) : a1.lanewise(VectorOperators.MIN, x1);
        }
        float r = max ? a0.lanewise(VectorOperators.MAX, a1).reduceLanes(VectorOperators.MAX)
                : a0.lanewise(VectorOperators.MIN, a1).reduceLanes(VectorOperators.MIN);
        for (; i < n; i++) r = max ? Math.max(r, get(s, off + i)) : Math.min(r, get(s, off + i));
        return r;
    }

    /**
     * Index of the first (or, with {@code last}, the last) element of a run equal to
     * {@code target}, or of the first/last NaN when {@code target} is NaN; -1 if none.
     * Equality is {@code ==}, so -0.0 and 0.0 match each other.
     */
    static long indexOf(MemorySegment s, long off, long n, float target, boolean last) {
        boolean nan = Float.isNaN(target);
        long vecEnd = n - n % LANES;
        if (!last) {
            for (long i = 0; i < vecEnd; i += LANES) {
                int lane = matches(load(s, off + i), target, nan).firstTrue();
                if (lane < LANES) return i + lane;
            }
            for (long i = vecEnd; i < n; i++) if (matches(get(s, off + i), target, nan)) return i;
        } else {
            for (long i = n - 1; i >= vecEnd; i--) if (matches(get(s, off + i), target, nan)) return i;
            for (long i = vecEnd - LANES; i >= 0; i -= LANES) {
                int lane = matches(load(s, off + i), target, nan).lastTrue();
                if (lane >= 0) return i + lane;
            }
        }
        return -1;
    }

    private static VectorMask<Float> matches(FloatVector v, float target, boolean nan) {
        return nan ? v.test(VectorOperators.IS_NAN) : v.compare(VectorOperators.EQ, target);
    }

    private static boolean matches(float v, float target, boolean nan) {
        return nan ? Float.isNaN(v) : v == target;
    }

    /**
     * Stores {@code exp(x - shift)} of a run to {@code out} (when non-null; it may be the
     * input run itself) and returns the sum of those values, accumulated as {@link #sum} does.
     * exp has one call site, masked to the run: VectorMath.exp is large once inlined, and a
     * second copy (an unrolled step or a separate tail) exhausts the JIT's inlining budget,
     * after which its helpers are called out of line with every vector boxed.
     */
    static double expShifted(MemorySegment in, long inOff, MemorySegment out, long outOff, long n, float shift) {
        double total = 0;
        FloatVector c = FloatVector.broadcast(SPECIES, shift);
        for (long block = 0; block < n; block += (long) FLUSH * LANES) {
            long end = Math.min(n, block + (long) FLUSH * LANES);
            FloatVector acc = FloatVector.zero(SPECIES);
            for (long i = block; i < end; i += LANES) {
                VectorMask<Float> m = SPECIES.indexInRange(i, end);
                FloatVector e = VectorMath.exp(load(in, inOff + i, m).sub(c));
                if (out != null) e.intoMemorySegment(out, (outOff + i) * 4, ORDER, m);
                acc = acc.add(e, m);
            }
            total += Lanes.sum(acc);
        }
        return total;
    }

    /** {@code out = in * factor} over a run (in place when the runs coincide). */
    static void scale(MemorySegment in, long inOff, MemorySegment out, long outOff, long n, float factor) {
        long i = 0, vecEnd = n - n % LANES;
        for (; i < vecEnd; i += LANES) {
            load(in, inOff + i).mul(factor).intoMemorySegment(out, (outOff + i) * 4, ORDER);
        }
        for (; i < n; i++) set(out, outOff + i, get(in, inOff + i) * factor);
    }

    /** {@code out = (x - a) - b} over a run: log_softmax's {@code (x - max) - log(sum)}, each difference rounded once. */
    static void subtractTwice(MemorySegment in, long inOff, MemorySegment out, long outOff, long n, float a, float b) {
        long i = 0, vecEnd = n - n % LANES;
        for (; i < vecEnd; i += LANES) {
            load(in, inOff + i).sub(a).sub(b).intoMemorySegment(out, (outOff + i) * 4, ORDER);
        }
        for (; i < n; i++) set(out, outOff + i, (get(in, inOff + i) - a) - b);
    }

    /**
     * {@code out = ((x - shiftHi) - shiftLo) * factor * weight + bias} over a run, with
     * weight and bias given per position. The shift is split into two floats so that
     * x minus a double-precision mean stays accurate when the mean is large next to the
     * spread; with shift 0 and bias 0 this is {@code (x * factor) * weight}.
     */
    static void normalize(MemorySegment in, long inOff, MemorySegment out, long outOff, int n,
                          float shiftHi, float shiftLo, float factor, float[] weight, float[] bias) {
        int i = 0, vecEnd = n - n % LANES;
        for (; i < vecEnd; i += LANES) {
            FloatVector t = load(in, inOff + i).sub(shiftHi).sub(shiftLo).mul(factor);
            t.fma(FloatVector.fromArray(SPECIES, weight, i), FloatVector.fromArray(SPECIES, bias, i))
                    .intoMemorySegment(out, (outOff + i) * 4, ORDER);
        }
        for (; i < n; i++) {
            float t = ((get(in, inOff + i) - shiftHi) - shiftLo) * factor;
            set(out, outOff + i, Math.fma(t, weight[i], bias[i]));
        }
    }

    /** {@link #normalize} a float at a time over heap copies, for a scalar twin: its tail's expression, which its vectors compute lane by lane. */
    static void normalizeScalar(float[] in, float[] out, int n, float shiftHi, float shiftLo, float factor, float[] weight, float[] bias) {
        for (int i = 0; i < n; i++) out[i] = Math.fma(((in[i] - shiftHi) - shiftLo) * factor, weight[i], bias[i]);
    }

    // ---------------------------------------------------------------- tiles of adjacent outputs
    //
    // One step of a reduction across adjacent outputs (sum over dim 0 of [N, C] and the
    // like): element-wise over a tile of {@code width} lanes, acc[v] op= x[off + v], where
    // acc holds whole vectors (its length rounded up to a multiple of LANES). Each
    // call is small and made once per reduced position, so the JIT compiles it early, and
    // every op is masked to the tile so no vector flows through a branch (which would box it).

    /** {@code acc[v] = max(acc[v], x[off + v])}, NaN propagating. */
    static void tileMax(MemorySegment s, long off, int width, float[] acc) {
        for (int v = 0; v < width; v += LANES) {
            VectorMask<Float> m = SPECIES.indexInRange(v, width);
            FloatVector.fromArray(SPECIES, acc, v).lanewise(VectorOperators.MAX, load(s, off + v, m)).intoArray(acc, v);
        }
    }

    /** {@code acc[v] = min(acc[v], x[off + v])}, NaN propagating. */
    static void tileMin(MemorySegment s, long off, int width, float[] acc) {
        for (int v = 0; v < width; v += LANES) {
            VectorMask<Float> m = SPECIES.indexInRange(v, width);
            FloatVector.fromArray(SPECIES, acc, v).lanewise(VectorOperators.MIN, load(s, off + v, m)).intoArray(acc, v);
        }
    }

    /** {@code acc[v] += x[off + v]}. */
    static void tileAdd(MemorySegment s, long off, int width, float[] acc) {
        for (int v = 0; v < width; v += LANES) {
            VectorMask<Float> m = SPECIES.indexInRange(v, width);
            FloatVector.fromArray(SPECIES, acc, v).add(load(s, off + v, m)).intoArray(acc, v);
        }
    }
}
