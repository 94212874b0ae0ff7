package dev.kiln.npu.kernels;

import dev.kiln.npu.Parallel;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.function.Supplier;

/** Reductions over dimension sets, argmax/argmin, cumulative sums and top-k. */
public final class Reductions {
    private Reductions() {}

    /** Reduced elements below which a reduction is not split across workers. */
    private static final long MIN_SPLIT = 1 << 13;
    private static final int TILE = FloatRuns.TILE, FLUSH = FloatRuns.FLUSH;

    // ================================================================ reduce

    /**
     * Reduces {@code op.dims()} of x into out, whose dtype is {@link ReduceFn#resultType}.
     *
     * <ul>
     * <li>No dimensions: each output is its one input element, converted to the result dtype.
     * <li>No elements (a reduced dimension of size 0): the identity, {@link ReduceFn#identity}:
     *     sum 0, prod 1, mean NaN, max -inf, min +inf. Integer results, which have no
     *     infinities, get the identity within their dtype: max the dtype's lowest value, min
     *     its highest; for bool, max (any) is false and min (all) is true.
     * <li>max/min propagate NaN (PyTorch); bool max is "any", bool min "all".
     * <li>Accuracy: float32 sum and mean add in float vector partials flushed into a double
     *     every 64 adds per lane (see {@link FloatRuns}): ~1e-7 relative for a million
     *     positive values. Other float types and every prod accumulate in double. Integer and
     *     bool inputs accumulate exactly in int64, wrapping on overflow as int64 does.
     * </ul>
     * float32 is vectorised along the reduced run when it is contiguous, else along the
     * innermost kept dimension when that is; large reductions with few outputs are split
     * across workers and the partials combined.
     */
    public static void reduce(Op.Reduce op, Tensor x, Tensor out) {
        ReduceFn fn = op.fn();
        ReducePlan plan = ReducePlan.of(x.layout(), op.dims());
        if (plan.outCount == 0) return;
        if (plan.redCount == 0) {
            fillIdentity(fn, out);
            return;
        }
        boolean vectorFn = x.dtype() == DType.FLOAT32 && fn != ReduceFn.PROD;
        if (vectorFn && plan.runStride() != 1 && plan.keptInnerStride() == 1 && plan.keptInnerSize() >= FloatRuns.LANES) {
            reduceColumns(fn, plan, x, out);
        } else {
            reduceRuns(fn, plan, x, out);
        }
    }

    private static void fillIdentity(ReduceFn fn, Tensor out) {
        DType t = out.dtype();
        MemorySegment s = out.storage().segment();
        long base = out.layout().offset();
        if (t.isFloatingPoint()) {
            for (long i = 0; i < out.numel(); i++) Elements.write(t, s, base + i, fn.identity());
            return;
        }
        long v = switch (fn) {
            case SUM, MEAN -> 0;
            case PROD -> 1;
            case MAX -> Elements.minValue(t);
            case MIN -> Elements.maxValue(t);
        };
        for (long i = 0; i < out.numel(); i++) Elements.writeLong(t, s, base + i, v);
    }

    /** How many parts to split each of {@code groups} reductions of {@code perGroup} elements into, to use every worker. */
    private static int splits(long groups, long perGroup) {
        int w = Parallel.workers();
        if (w == 1 || groups >= w || perGroup < 2 * MIN_SPLIT) return 1;
        long wanted = (2L * w + groups - 1) / groups;
        return (int) Math.max(1, Math.min(wanted, perGroup / MIN_SPLIT));
    }

    /** The general path: each output accumulates the innermost reduced runs of its elements. */
    private static void reduceRuns(ReduceFn fn, ReducePlan p, Tensor x, Tensor out) {
        // prod accumulates in double even for float32, so it takes the scalar loop.
        boolean vector = x.dtype() == DType.FLOAT32 && p.runStride() == 1 && fn != ReduceFn.PROD;
        MemorySegment xs = x.storage().segment(), os = out.storage().segment();
        long outBase = out.layout().offset();
        Supplier<Accumulator> make = x.dtype().isFloatingPoint()
                ? () -> new FloatAccumulator(fn, x.dtype(), xs, out.dtype(), os, p.redCount, vector)
                : () -> new IntAccumulator(fn, x.dtype(), xs, out.dtype(), os);
        long cost = p.outCount * p.redCount;
        int splits = splits(p.outCount, p.redCount);
        if (splits == 1) {
            Parallel.forRange(p.outCount, cost, (from, to) -> {
                Accumulator acc = make.get();
                Odometer o = p.outputs(from);
                for (long i = from; i < to; i++, o.next()) {
                    acc.reset();
                    accumulate(p, acc, o.a(), 0, p.redCount);
                    acc.store(outBase + o.b());
                }
            });
            return;
        }
        Accumulator[] parts = new Accumulator[Math.toIntExact(p.outCount * splits)];
        Parallel.forRange(parts.length, cost, (from, to) -> {
            for (long u = from; u < to; u++) {
                long s = u % splits;
                Accumulator acc = make.get();
                acc.reset();
                accumulate(p, acc, p.outputs(u / splits).a(), p.redCount * s / splits, p.redCount * (s + 1) / splits);
                parts[(int) u] = acc;
            }
        });
        Odometer o = p.outputs(0);
        for (int i = 0; i < p.outCount; i++, o.next()) {
            Accumulator acc = parts[i * splits];
            for (int s = 1; s < splits; s++) acc.merge(parts[i * splits + s]);
            acc.store(outBase + o.b());
        }
    }

    /** Adds reduced elements [from, to) (row-major over the reduced dimensions) of the output starting at {@code inBase}. */
    private static void accumulate(ReducePlan p, Accumulator acc, long inBase, long from, long to) {
        int n = p.runLength();
        long stride = p.runStride();
        int j = (int) (from % n);
        Odometer runs = p.runs(from / n);
        while (from < to) {
            int len = (int) Math.min(n - j, to - from);
            acc.addRun(inBase + runs.a() + j * stride, len, stride);
            from += len;
            j = 0;
            runs.next();
        }
    }

    /** Running state of one output's reduction. */
    private sealed interface Accumulator permits FloatAccumulator, IntAccumulator {
        void reset();

        /** Adds {@code len} elements at {@code off, off + stride, ...}. */
        void addRun(long off, int len, long stride);

        void merge(Accumulator other);

        void store(long outIndex);
    }

    /** Floating inputs: a double accumulator; with {@code vector}, float32 unit-stride runs go through {@link FloatRuns}. */
    private static final class FloatAccumulator implements Accumulator {
        private final ReduceFn fn;
        private final DType inType, outType;
        private final MemorySegment in, out;
        private final long count;
        private final boolean vector;
        private double value;

        FloatAccumulator(ReduceFn fn, DType inType, MemorySegment in, DType outType, MemorySegment out, long count, boolean vector) {
            this.fn = fn;
            this.inType = inType;
            this.in = in;
            this.outType = outType;
            this.out = out;
            this.count = count;
            this.vector = vector;
        }

        public void reset() {
            // -0.0 rather than 0 for sums: it is the exact additive identity, so reducing nothing keeps -0.0.
            value = fn == ReduceFn.SUM || fn == ReduceFn.MEAN ? -0.0 : fn.identity();
        }

        public void addRun(long off, int len, long stride) {
            if (vector) {
                switch (fn) {
                    case MAX -> value = Math.max(value, FloatRuns.extreme(in, off, len, true));
                    case MIN -> value = Math.min(value, FloatRuns.extreme(in, off, len, false));
                    default -> value += FloatRuns.sum(in, off, len);
                }
                return;
            }
            double v = value;
            switch (fn) {
                case SUM, MEAN -> { for (int j = 0; j < len; j++) v += Elements.read(inType, in, off + j * stride); }
                case PROD -> { for (int j = 0; j < len; j++) v *= Elements.read(inType, in, off + j * stride); }
                case MAX -> { for (int j = 0; j < len; j++) v = Math.max(v, Elements.read(inType, in, off + j * stride)); }
                case MIN -> { for (int j = 0; j < len; j++) v = Math.min(v, Elements.read(inType, in, off + j * stride)); }
            }
            value = v;
        }

        public void merge(Accumulator other) {
            double o = ((FloatAccumulator) other).value;
            value = switch (fn) {
                case SUM, MEAN -> value + o;
                case PROD -> value * o;
                case MAX -> Math.max(value, o);
                case MIN -> Math.min(value, o);
            };
        }

        public void store(long outIndex) {
            Elements.write(outType, out, outIndex, fn == ReduceFn.MEAN ? value / count : value);
        }
    }

    /** Integer and bool inputs: an exact int64 accumulator. */
    private static final class IntAccumulator implements Accumulator {
        private final ReduceFn fn;
        private final DType inType, outType;
        private final MemorySegment in, out;
        /** For max and min, the best value's {@link Elements#orderKey}; the sum or product otherwise. */
        private long value;

        IntAccumulator(ReduceFn fn, DType inType, MemorySegment in, DType outType, MemorySegment out) {
            this.fn = fn;
            this.inType = inType;
            this.in = in;
            this.outType = outType;
            this.out = out;
        }

        public void reset() {
            value = switch (fn) {
                case SUM, MEAN -> 0;
                case PROD -> 1;
                case MAX -> Long.MIN_VALUE;
                case MIN -> Long.MAX_VALUE;
            };
        }

        public void addRun(long off, int len, long stride) {
            long v = value;
            switch (fn) {
                case SUM, MEAN -> { for (int j = 0; j < len; j++) v += Elements.readLong(inType, in, off + j * stride); }
                case PROD -> { for (int j = 0; j < len; j++) v *= Elements.readLong(inType, in, off + j * stride); }
                case MAX -> { for (int j = 0; j < len; j++) v = Math.max(v, Elements.orderKey(inType, Elements.readLong(inType, in, off + j * stride))); }
                case MIN -> { for (int j = 0; j < len; j++) v = Math.min(v, Elements.orderKey(inType, Elements.readLong(inType, in, off + j * stride))); }
            }
            value = v;
        }

        public void merge(Accumulator other) {
            long o = ((IntAccumulator) other).value;
            value = switch (fn) {
                case SUM, MEAN -> value + o;
                case PROD -> value * o;
                case MAX -> Math.max(value, o);
                case MIN -> Math.min(value, o);
            };
        }

        public void store(long outIndex) {
            boolean keyed = fn == ReduceFn.MAX || fn == ReduceFn.MIN;
            Elements.writeLong(outType, out, outIndex, keyed ? Elements.orderKey(inType, value) : value);
        }
    }

    /**
     * float32 sum/mean/max/min whose innermost kept dimension is contiguous but whose
     * reduced elements are not (sum over dim 0 of [N, C]): each task owns a tile of
     * adjacent outputs and adds whole input vectors into per-lane accumulators, one per
     * output, walking the reduced elements. Sums flush the float accumulators into
     * doubles every {@link #FLUSH} elements.
     */
    private static void reduceColumns(ReduceFn fn, ReducePlan p, Tensor x, Tensor out) {
        MemorySegment xs = x.storage().segment(), os = out.storage().segment();
        long outBase = out.layout().offset();
        int inner = p.keptInnerSize();
        int tiles = (inner + TILE - 1) / TILE;
        long groups = p.outCount / inner * tiles;
        int splits = splits(groups, p.redCount);
        double[][] parts = new double[Math.toIntExact(groups * splits)][];
        Parallel.forRange(groups * splits, p.outCount * p.redCount, (from, to) -> {
            for (long u = from; u < to; u++) {
                long g = u / splits, s = u % splits;
                int tile = (int) (g % tiles);
                Odometer o = p.outerOutputs(g / tiles);
                int width = Math.min(TILE, inner - tile * TILE);
                double[] r = columnTile(fn, p, xs, o.a() + (long) tile * TILE, width,
                        p.redCount * s / splits, p.redCount * (s + 1) / splits);
                if (splits == 1) storeColumns(fn, r, os, outBase + o.b() + (long) tile * TILE, p.redCount);
                else parts[(int) u] = r;
            }
        });
        if (splits == 1) return;
        for (long g = 0; g < groups; g++) {
            double[] r = parts[(int) (g * splits)];
            for (int s = 1; s < splits; s++) {
                double[] q = parts[(int) (g * splits + s)];
                for (int j = 0; j < r.length; j++) {
                    r[j] = switch (fn) {
                        case MAX -> Math.max(r[j], q[j]);
                        case MIN -> Math.min(r[j], q[j]);
                        default -> r[j] + q[j];
                    };
                }
            }
            int tile = (int) (g % tiles);
            storeColumns(fn, r, os, outBase + p.outerOutputs(g / tiles).b() + (long) tile * TILE, p.redCount);
        }
    }

    private static void storeColumns(ReduceFn fn, double[] r, MemorySegment os, long off, long count) {
        for (int j = 0; j < r.length; j++) FloatRuns.set(os, off + j, (float) (fn == ReduceFn.MEAN ? r[j] / count : r[j]));
    }

    /** Reduces reduced elements [from, to) for the {@code width} adjacent outputs whose inputs start at {@code inBase}. */
    private static double[] columnTile(ReduceFn fn, ReducePlan p, MemorySegment xs, long inBase, int width, long from, long to) {
        boolean sum = fn == ReduceFn.SUM || fn == ReduceFn.MEAN;
        float[] acc = new float[(width + FloatRuns.LANES - 1) / FloatRuns.LANES * FloatRuns.LANES]; // whole vectors
        Arrays.fill(acc, sum ? 0 : (float) fn.identity());
        double[] total = new double[width];
        Odometer e = p.elements(from);
        int steps = 0;
        for (long k = from; k < to; k++, e.next()) {
            long off = inBase + e.a();
            switch (fn) {
                case MAX -> FloatRuns.tileMax(xs, off, width, acc);
                case MIN -> FloatRuns.tileMin(xs, off, width, acc);
                default -> {
                    FloatRuns.tileAdd(xs, off, width, acc);
                    if (++steps == FLUSH) {
                        for (int j = 0; j < width; j++) total[j] += acc[j];
                        Arrays.fill(acc, 0f);
                        steps = 0;
                    }
                }
            }
        }
        for (int j = 0; j < width; j++) total[j] = sum ? total[j] + acc[j] : acc[j];
        return total;
    }

    // ================================================================ argmax / argmin

    /**
     * Index of the maximum (minimum) along {@code op.dim()}, as int64. Equal values give
     * the first index, or the last with {@code lastIndex} (ONNX select_last_index). NaN
     * counts as greater than everything for argmax and less than everything for argmin,
     * so the first NaN wins (PyTorch); with {@code lastIndex} NaNs tie like other equal
     * values and the last one wins. -0.0 and 0.0 are equal.
     */
    public static void argReduce(Op.ArgReduce op, Tensor x, Tensor out) {
        Rows rows = Rows.along(x.layout(), lineOutputStrides(x.shape(), op.dim(), 1), out.layout().offset(), op.dim());
        int n = rows.length();
        MemorySegment xs = x.storage().segment(), os = out.storage().segment();
        DType t = x.dtype();
        boolean vector = t == DType.FLOAT32 && rows.inDense();
        long stride = rows.inStride();
        Parallel.forRange(rows.count(), rows.count() * n, (from, to) -> {
            Odometer w = rows.walker(from);
            for (long r = from; r < to; r++, w.next()) {
                long best;
                if (vector) {
                    float target = FloatRuns.extreme(xs, w.a(), n, op.max());
                    best = FloatRuns.indexOf(xs, w.a(), n, target, op.lastIndex());
                } else if (t.isFloatingPoint()) {
                    best = argBestDouble(t, xs, w.a(), n, stride, op.max(), op.lastIndex());
                } else {
                    best = argBestLong(t, xs, w.a(), n, stride, op.max(), op.lastIndex());
                }
                os.setAtIndex(ValueLayout.JAVA_LONG, w.b(), best);
            }
        });
    }

    private static long argBestDouble(DType t, MemorySegment s, long off, int n, long stride, boolean max, boolean last) {
        long best = 0;
        double bv = Elements.read(t, s, off);
        for (int i = 1; i < n; i++) {
            double v = Elements.read(t, s, off + i * stride);
            boolean better;
            if (Double.isNaN(v)) better = !Double.isNaN(bv) || last;
            else better = !Double.isNaN(bv) && ((max ? v > bv : v < bv) || (last && v == bv));
            if (better) {
                best = i;
                bv = v;
            }
        }
        return best;
    }

    private static long argBestLong(DType t, MemorySegment s, long off, int n, long stride, boolean max, boolean last) {
        long best = 0;
        long bv = Elements.orderKey(t, Elements.readLong(t, s, off));
        for (int i = 1; i < n; i++) {
            long v = Elements.orderKey(t, Elements.readLong(t, s, off + i * stride));
            if ((max ? v > bv : v < bv) || (last && v == bv)) {
                best = i;
                bv = v;
            }
        }
        return best;
    }

    /** Strides of a contiguous output shaped as {@code x} with dimension {@code dim} resized to {@code size}, per dimension of x. */
    private static long[] lineOutputStrides(Shape x, int dim, int size) {
        if (x.rank() == 0) return new long[0];
        return x.with(dim, size).contiguousStrides();
    }

    // ================================================================ cumsum

    /**
     * Cumulative sum along {@code op.dim()} (ONNX CumSum): with {@code exclusive} each
     * output leaves out its own element (the first is 0), with {@code reverse} sums run
     * from the end. Floating types accumulate in double and round on store; integer and
     * bool inputs accumulate exactly in int64 (the output dtype).
     */
    public static void cumsum(Op.CumSum op, Tensor x, Tensor out) {
        Rows rows = Rows.along(x.layout(), out.layout().strides(), out.layout().offset(), op.dim());
        int n = rows.length();
        MemorySegment xs = x.storage().segment(), os = out.storage().segment();
        DType in = x.dtype(), ot = out.dtype();
        long inStride = rows.inStride(), outStride = rows.outStride();
        boolean exclusive = op.exclusive(), reverse = op.reverse();
        Parallel.forRange(rows.count(), rows.count() * n, (from, to) -> {
            Odometer w = rows.walker(from);
            for (long r = from; r < to; r++, w.next()) {
                if (in.isFloatingPoint()) {
                    double acc = 0;
                    for (int step = 0; step < n; step++) {
                        int i = reverse ? n - 1 - step : step;
                        double v = Elements.read(in, xs, w.a() + i * inStride);
                        if (exclusive) {
                            Elements.write(ot, os, w.b() + i * outStride, acc);
                            acc += v;
                        } else {
                            acc += v;
                            Elements.write(ot, os, w.b() + i * outStride, acc);
                        }
                    }
                } else {
                    long acc = 0;
                    for (int step = 0; step < n; step++) {
                        int i = reverse ? n - 1 - step : step;
                        long v = Elements.readLong(in, xs, w.a() + i * inStride);
                        if (exclusive) {
                            Elements.writeLong(ot, os, w.b() + i * outStride, acc);
                            acc += v;
                        } else {
                            acc += v;
                            Elements.writeLong(ot, os, w.b() + i * outStride, acc);
                        }
                    }
                }
            }
        });
    }

    // ================================================================ topk

    /**
     * The k largest (smallest) elements along {@code op.dim()} and their int64 indices,
     * always sorted: descending for largest, ascending for smallest, equal values in
     * index order. NaN ranks above every number (PyTorch), so it comes first among the
     * largest and last among the smallest; -0.0 and 0.0 are equal.
     *
     * <p>Selection keeps a bounded heap of the best k seen, O(n log k) per row, over keys
     * that order every dtype exactly (int64 values as themselves, floats by a monotone
     * map of their bits), then sorts the heap; values are copied bit for bit.
     */
    public static void topk(Op.TopK op, Tensor x, Tensor values, Tensor indices) {
        int k = op.k();
        Rows rows = Rows.along(x.layout(), values.layout().strides(), 0, op.dim());
        int n = rows.length();
        if (k == 0) return;
        MemorySegment xs = x.storage().segment(), vs = values.storage().segment(), is = indices.storage().segment();
        DType t = x.dtype();
        int bytes = t.byteSize();
        long inStride = rows.inStride(), outStride = rows.outStride();
        long vBase = values.layout().offset(), iBase = indices.layout().offset();
        long cost = rows.count() * n * (1 + 64 - Long.numberOfLeadingZeros(k));
        Parallel.forRange(rows.count(), cost, (from, to) -> {
            long[] keys = new long[n];
            int[] order = new int[k];
            Odometer w = rows.walker(from);
            for (long r = from; r < to; r++, w.next()) {
                for (int i = 0; i < n; i++) {
                    long off = w.a() + i * inStride;
                    keys[i] = t.isFloatingPoint() ? floatKey(Elements.read(t, xs, off)) : Elements.orderKey(t, Elements.readLong(t, xs, off));
                }
                select(keys, n, k, op.largest(), order);
                for (int j = 0; j < k; j++) {
                    long src = w.a() + order[j] * inStride, dst = w.b() + j * outStride;
                    MemorySegment.copy(xs, src * bytes, vs, (vBase + dst) * bytes, bytes);
                    is.setAtIndex(ValueLayout.JAVA_LONG, iBase + dst, order[j]);
                }
            }
        });
    }

    /** A long ordered as the float values are: NaN above +inf, -0.0 equal to 0.0. */
    private static long floatKey(double v) {
        if (Double.isNaN(v)) return Long.MAX_VALUE;
        if (v == 0) return 0;
        long bits = Double.doubleToRawLongBits(v);
        // Negative floats order inversely to their bit patterns: flip the magnitude bits.
        return bits >= 0 ? bits : bits ^ Long.MAX_VALUE;
    }

    /** True when element a ranks before element b: larger (smaller) key first, then lower index. */
    private static boolean before(long[] keys, int a, int b, boolean largest) {
        long ka = keys[a], kb = keys[b];
        if (ka != kb) return largest ? ka > kb : ka < kb;
        return a < b;
    }

    /** Fills {@code order} with the indices of the k best elements, best first. */
    private static void select(long[] keys, int n, int k, boolean largest, int[] order) {
        // A heap whose root is the worst element kept so far.
        int size = 0;
        for (int i = 0; i < n; i++) {
            if (size < k) {
                int c = size++;
                order[c] = i;
                while (c > 0 && before(keys, order[(c - 1) / 2], order[c], largest)) {
                    swap(order, c, (c - 1) / 2);
                    c = (c - 1) / 2;
                }
            } else if (before(keys, i, order[0], largest)) {
                order[0] = i;
                siftDown(keys, order, k, largest);
            }
        }
        for (int end = k - 1; end > 0; end--) {
            swap(order, 0, end);
            siftDown(keys, order, end, largest);
        }
    }

    private static void siftDown(long[] keys, int[] heap, int size, boolean largest) {
        int p = 0;
        while (true) {
            int l = 2 * p + 1, r = l + 1, worst = p;
            if (l < size && before(keys, heap[worst], heap[l], largest)) worst = l;
            if (r < size && before(keys, heap[worst], heap[r], largest)) worst = r;
            if (worst == p) return;
            swap(heap, p, worst);
            p = worst;
        }
    }

    private static void swap(int[] a, int i, int j) {
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
