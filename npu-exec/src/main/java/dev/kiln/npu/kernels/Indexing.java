package dev.kiln.npu.kernels;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.StridedIndex;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * gather, gather_elements, concat, tril/triu and rope. Everything but rope moves
 * elements without arithmetic, so it works on raw bits of any dtype: contiguous runs
 * go through {@link MemorySegment#copy}, strided ones element by element, and concat
 * converts where an input's dtype differs from the promoted output dtype.
 */
public final class Indexing {
    private Indexing() {}

    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = SPECIES.length();
    /** Longest run one parallel unit copies, so a single large block still splits across workers. */
    private static final int CHUNK = 1 << 16;

    // ================================================================ gather

    /** ONNX Gather / index_select along {@code axis} with an index tensor of any shape (embedding lookup). */
    public static void gather(Op.Gather op, Tensor data, Tensor idx, Tensor out) {
        int axis = op.axis();
        int[] d = data.shape().dims();
        long[] indices = checkedIndices(op, idx, axis, data.shape());
        if (out.numel() == 0) return;
        long[] st = data.layout().strides();
        int[] outerDims = Arrays.copyOf(d, axis);
        long[] outerStrides = Arrays.copyOf(st, axis);
        Strided block = Strided.of(Arrays.copyOfRange(d, axis + 1, d.length), Arrays.copyOfRange(st, axis + 1, d.length),
                Shape.of(Arrays.copyOfRange(d, axis + 1, d.length)).contiguousStrides());
        long blockSize = block.numel(), count = indices.length, axisStride = st[axis];
        int bytes = data.dtype().byteSize();
        MemorySegment src = data.storage().segment(), dst = out.storage().segment();
        Parallel.forRange(Shape.of(outerDims).numel() * count, out.numel(), (from, to) -> {
            for (long row = from; row < to; row++) {
                long outer = row / count;
                long srcOffset = StridedIndex.offset(outerDims, outerStrides, data.layout().offset(), outer)
                        + indices[(int) (row % count)] * axisStride;
                block.move(bytes, src, srcOffset, dst, row * blockSize, 0, block.rows());
            }
        });
    }

    /** Every index of {@code idx} resolved (negative ones from the end) and checked against dimension {@code axis}. */
    private static long[] checkedIndices(Op op, Tensor idx, int axis, Shape dataShape) {
        long[] out = new long[Math.toIntExact(idx.numel())];
        int[] dims = idx.shape().dims();
        long[] st = idx.layout().strides();
        for (int i = 0; i < out.length; i++) {
            long raw = readIndex(idx.dtype(), idx.storage().segment(), StridedIndex.offset(dims, st, idx.layout().offset(), i));
            out[i] = checkIndex(op, raw, axis, dataShape);
        }
        return out;
    }

    private static long readIndex(DType type, MemorySegment s, long offset) {
        return type == DType.INT32 ? s.getAtIndex(ValueLayout.JAVA_INT, offset) : s.getAtIndex(ValueLayout.JAVA_LONG, offset);
    }

    private static long checkIndex(Op op, long index, int axis, Shape dataShape) {
        long size = dataShape.rank() == 0 ? 1 : dataShape.dim(axis);
        long resolved = index < 0 ? index + size : index;
        if (resolved < 0 || resolved >= size) {
            throw new KilnException(op.name() + ": index " + index + " is out of range for dimension " + axis
                    + " of size " + size + " in shape " + dataShape);
        }
        return resolved;
    }

    // ================================================================ gather_elements

    /** torch.gather / ONNX GatherElements: {@code out[..i..] = data[..index[..i..]..]} along {@code axis}. */
    public static void gatherElements(Op.GatherElements op, Tensor data, Tensor idx, Tensor out) {
        int axis = op.axis();
        // A 0-d tensor behaves as one element along a dimension of size 1.
        int[] dims = data.rank() == 0 ? new int[] {1} : idx.shape().dims();
        long[] dataStrides = data.rank() == 0 ? new long[] {0} : data.layout().strides();
        long[] idxStrides = idx.rank() == 0 ? new long[] {0} : idx.layout().strides();
        long n = out.numel();
        if (n == 0) return;
        int last = dims.length - 1, width = dims[last];
        long axisStride = dataStrides[axis];
        long[] otherStrides = dataStrides.clone();
        otherStrides[axis] = 0;
        MemorySegment src = data.storage().segment(), index = idx.storage().segment(), dst = out.storage().segment();
        long rows = n / width;
        // Checked before anything is written: an error leaves no partial work behind, and no worker throws.
        for (long row = 0; row < rows; row++) {
            long ib = StridedIndex.rowOffset(dims, idxStrides, idx.layout().offset(), row);
            for (int j = 0; j < width; j++) checkIndex(op, readIndex(idx.dtype(), index, ib + j * idxStrides[last]), axis, data.shape());
        }
        int bytes = data.dtype().byteSize();
        long axisSize = dims.length == data.rank() ? data.shape().dim(axis) : 1;
        Parallel.forRange(rows, n, (from, to) -> {
            for (long row = from; row < to; row++) {
                long ib = StridedIndex.rowOffset(dims, idxStrides, idx.layout().offset(), row);
                long db = StridedIndex.rowOffset(dims, otherStrides, data.layout().offset(), row);
                for (int j = 0; j < width; j++) {
                    long i = readIndex(idx.dtype(), index, ib + j * idxStrides[last]);
                    long resolved = i < 0 ? i + axisSize : i;
                    moveElement(bytes, src, db + j * otherStrides[last] + resolved * axisStride, dst, row * width + j);
                }
            }
        });
    }

    // ================================================================ concat

    /** Joins the inputs along {@code dim} into the promoted dtype; inputs empty along dim contribute nothing. */
    public static void concat(Op.Concat op, Tensor[] in, Tensor out) {
        int dim = op.dim();
        long[] outStrides = out.layout().strides();
        long at = 0;
        for (Tensor t : in) {
            long start = at;
            at += t.size(dim);
            if (t.numel() == 0) continue;
            Strided copy = Strided.of(t.shape().dims(), t.layout().strides(), outStrides);
            copy.run(t.dtype(), t.storage().segment(), t.layout().offset(),
                    out.dtype(), out.storage().segment(), start * outStrides[dim]);
        }
    }

    // ================================================================ tril / triu

    /** Keeps one triangle of the last two dimensions (relative to the diagonal offset) and zeroes the rest. */
    public static void triangle(Op.Triangle op, Tensor x, Tensor out) {
        int[] d = x.shape().dims();
        int m = d[d.length - 2], n = d[d.length - 1];
        if (out.numel() == 0) return;
        // Offsets beyond the matrix keep everything or nothing; clamping keeps the arithmetic in range.
        long diagonal = Math.clamp(op.diagonal(), -(m + 1L), n + 1L);
        long[] st = x.layout().strides();
        long lastStride = st[d.length - 1];
        int bytes = x.dtype().byteSize();
        MemorySegment src = x.storage().segment(), dst = out.storage().segment();
        Parallel.forRange(out.numel() / n, out.numel(), (from, to) -> {
            for (long row = from; row < to; row++) {
                long i = row % m;
                int lo = op.upper() ? (int) Math.clamp(i + diagonal, 0, n) : 0;
                int hi = op.upper() ? n : (int) Math.clamp(i + diagonal + 1, 0, n);
                long srcRow = StridedIndex.rowOffset(d, st, x.layout().offset(), row), dstRow = row * n;
                fillZero(bytes, dst, dstRow, Math.min(lo, hi));
                if (hi > lo) moveRun(bytes, src, srcRow + lo * lastStride, lastStride, dst, dstRow + lo, 1, hi - lo);
                fillZero(bytes, dst, dstRow + Math.max(lo, hi), n - Math.max(lo, hi));
            }
        });
    }

    private static void fillZero(int bytes, MemorySegment s, long offset, long count) {
        // Zero bits are zero (or false) in every dtype.
        if (count > 0) s.asSlice(offset * bytes, count * bytes).fill((byte) 0);
    }

    // ================================================================ rope

    private static final VectorShuffle<Float> SWAP_PAIRS = VectorShuffle.fromOp(SPECIES, i -> i ^ 1);
    private static final VectorShuffle<Float> SPREAD_LOW = VectorShuffle.fromOp(SPECIES, i -> i / 2);
    private static final VectorShuffle<Float> SPREAD_HIGH = VectorShuffle.fromOp(SPECIES, i -> LANES / 2 + i / 2);
    private static final FloatVector MINUS_PLUS = FloatVector.fromArray(SPECIES, minusPlus(), 0);

    private static float[] minusPlus() {
        float[] v = new float[LANES];
        for (int i = 0; i < LANES; i++) v[i] = i % 2 == 0 ? -1f : 1f;
        return v;
    }

    /**
     * Rotary embedding: each pair (a, b) of the last dimension becomes
     * (a cos - b sin, b cos + a sin), computed in x's compute type.
     */
    public static void rope(Op.Rope op, Tensor x, Tensor cos, Tensor sin, Tensor out) {
        int[] xd = x.shape().dims();
        int width = xd[xd.length - 1], half = width / 2;
        if (out.numel() == 0) return;
        Shape halfShape = x.shape().with(-1, half);
        long[] xs = x.layout().strides();
        long[] cs = StridedIndex.broadcastStrides(cos.layout(), halfShape), ss = StridedIndex.broadcastStrides(sin.layout(), halfShape);
        int last = xd.length - 1;
        boolean fast = x.dtype() == DType.FLOAT32 && cos.dtype() == DType.FLOAT32 && sin.dtype() == DType.FLOAT32
                && xs[last] == 1 && cs[last] == 1 && ss[last] == 1;
        RopeRow row = new RopeRow(op.interleaved(), half, x, cos, sin, out, xs[last], cs[last], ss[last]);
        int[] rowSizes = Arrays.copyOf(xd, last);
        long[] xRows = Arrays.copyOf(xs, last), cRows = Arrays.copyOf(cs, last), sRows = Arrays.copyOf(ss, last);
        Parallel.forRange(out.numel() / width, out.numel() * 3, (from, to) -> {
            // Row offsets stepped, not divided out per row (three division chains were most of a 64-wide row's time).
            Odometer xc = new Odometer(rowSizes, xRows, x.layout().offset(), cRows, cos.layout().offset()).seek(from);
            Odometer sn = new Odometer(rowSizes, sRows, sin.layout().offset(), new long[last], 0).seek(from);
            for (long r = from; r < to; r++, xc.next(), sn.next()) {
                if (fast) row.float32(xc.a(), xc.b(), sn.a(), r * width);
                else row.generic(xc.a(), xc.b(), sn.a(), r * width);
            }
        });
    }

    /** One row of rope: a vectorised float32 form for unit-stride rows and a generic one for the rest. */
    private record RopeRow(boolean interleaved, int half, Tensor x, Tensor cos, Tensor sin, Tensor out,
                           long xStride, long cosStride, long sinStride) {

        void float32(long xo, long co, long so, long oo) {
            MemorySegment xm = x.storage().segment(), cm = cos.storage().segment(), sm = sin.storage().segment();
            MemorySegment om = out.storage().segment();
            ByteOrder order = ByteOrder.nativeOrder();
            int i = 0;
            if (interleaved) {
                // LANES pairs per step: spread each cos/sin lane over its pair and swap a with b.
                for (; i + LANES <= half; i += LANES) {
                    FloatVector c = FloatVector.fromMemorySegment(SPECIES, cm, (co + i) * 4, order);
                    FloatVector s = FloatVector.fromMemorySegment(SPECIES, sm, (so + i) * 4, order);
                    for (int part = 0; part < 2; part++) {
                        VectorShuffle<Float> spread = part == 0 ? SPREAD_LOW : SPREAD_HIGH;
                        long at = 2L * i + (long) part * LANES;
                        FloatVector v = FloatVector.fromMemorySegment(SPECIES, xm, (xo + at) * 4, order);
                        FloatVector rotated = v.mul(c.rearrange(spread)).add(v.rearrange(SWAP_PAIRS).mul(s.rearrange(spread).mul(MINUS_PLUS)));
                        rotated.intoMemorySegment(om, (oo + at) * 4, order);
                    }
                }
            } else {
                for (; i + LANES <= half; i += LANES) {
                    FloatVector a = FloatVector.fromMemorySegment(SPECIES, xm, (xo + i) * 4, order);
                    FloatVector b = FloatVector.fromMemorySegment(SPECIES, xm, (xo + half + i) * 4, order);
                    FloatVector c = FloatVector.fromMemorySegment(SPECIES, cm, (co + i) * 4, order);
                    FloatVector s = FloatVector.fromMemorySegment(SPECIES, sm, (so + i) * 4, order);
                    a.mul(c).sub(b.mul(s)).intoMemorySegment(om, (oo + i) * 4, order);
                    b.mul(c).add(a.mul(s)).intoMemorySegment(om, (oo + half + i) * 4, order);
                }
            }
            for (; i < half; i++) {
                long ia = interleaved ? 2L * i : i, ib = interleaved ? 2L * i + 1 : i + half;
                float a = xm.getAtIndex(ValueLayout.JAVA_FLOAT, xo + ia), b = xm.getAtIndex(ValueLayout.JAVA_FLOAT, xo + ib);
                float c = cm.getAtIndex(ValueLayout.JAVA_FLOAT, co + i), s = sm.getAtIndex(ValueLayout.JAVA_FLOAT, so + i);
                om.setAtIndex(ValueLayout.JAVA_FLOAT, oo + ia, a * c - b * s);
                om.setAtIndex(ValueLayout.JAVA_FLOAT, oo + ib, b * c + a * s);
            }
        }

        /** Any dtypes and strides: float64 computes in double, the other float types in float32. */
        void generic(long xo, long co, long so, long oo) {
            MemorySegment xm = x.storage().segment(), cm = cos.storage().segment(), sm = sin.storage().segment();
            MemorySegment om = out.storage().segment();
            boolean inDouble = x.dtype() == DType.FLOAT64;
            for (int i = 0; i < half; i++) {
                long ia = interleaved ? 2L * i : i, ib = interleaved ? 2L * i + 1 : i + half;
                double a = Elements.read(x.dtype(), xm, xo + ia * xStride), b = Elements.read(x.dtype(), xm, xo + ib * xStride);
                double c = Elements.read(cos.dtype(), cm, co + i * cosStride), s = Elements.read(sin.dtype(), sm, so + i * sinStride);
                if (inDouble) {
                    Elements.write(DType.FLOAT64, om, oo + ia, a * c - b * s);
                    Elements.write(DType.FLOAT64, om, oo + ib, b * c + a * s);
                } else {
                    float fa = (float) a, fb = (float) b, fc = (float) c, fs = (float) s;
                    Elements.write(out.dtype(), om, oo + ia, fa * fc - fb * fs);
                    Elements.write(out.dtype(), om, oo + ib, fb * fc + fa * fs);
                }
            }
        }
    }

    // ================================================================ element moves

    /**
     * A copy of elements of one shape between two strided layouts, with dimensions that
     * are laid out consecutively in both merged (so a contiguous block is one run).
     * Runs are ranges of the last merged dimension, cut into chunks for the workers.
     */
    private record Strided(int[] dims, long[] src, long[] dst) {

        static Strided of(int[] dims, long[] src, long[] dst) {
            int[] d = new int[dims.length];
            long[] s = new long[dims.length], t = new long[dims.length];
            int k = 0;
            for (int i = 0; i < dims.length; i++) {
                if (dims[i] == 1) continue;
                if (k > 0 && s[k - 1] == src[i] * dims[i] && t[k - 1] == dst[i] * dims[i]) {
                    d[k - 1] *= dims[i];
                    s[k - 1] = src[i];
                    t[k - 1] = dst[i];
                } else {
                    d[k] = dims[i];
                    s[k] = src[i];
                    t[k] = dst[i];
                    k++;
                }
            }
            if (k == 0) return new Strided(new int[] {1}, new long[] {1}, new long[] {1});
            return new Strided(Arrays.copyOf(d, k), Arrays.copyOf(s, k), Arrays.copyOf(t, k));
        }

        long numel() { return Shape.of(dims).numel(); }

        int runLength() { return dims[dims.length - 1]; }

        long rows() { return numel() / runLength(); }

        /** Copies rows [fromRow, toRow) of raw bits. */
        void move(int bytes, MemorySegment s, long srcBase, MemorySegment d, long dstBase, long fromRow, long toRow) {
            int last = dims.length - 1;
            for (long row = fromRow; row < toRow; row++) {
                moveRun(bytes, s, StridedIndex.rowOffset(dims, src, srcBase, row), src[last],
                        d, StridedIndex.rowOffset(dims, dst, dstBase, row), dst[last], runLength());
            }
        }

        /** The whole copy, converting when the dtypes differ, in parallel chunks. */
        void run(DType srcType, MemorySegment s, long srcBase, DType dstType, MemorySegment d, long dstBase) {
            int last = dims.length - 1, length = runLength();
            int chunks = Math.ceilDiv(length, CHUNK);
            Parallel.forRange(rows() * chunks, numel(), (from, to) -> {
                for (long unit = from; unit < to; unit++) {
                    long row = unit / chunks;
                    int start = (int) (unit % chunks) * CHUNK, count = Math.min(CHUNK, length - start);
                    long so = StridedIndex.rowOffset(dims, src, srcBase, row) + start * src[last];
                    long dOff = StridedIndex.rowOffset(dims, dst, dstBase, row) + start * dst[last];
                    if (srcType == dstType) moveRun(srcType.byteSize(), s, so, src[last], d, dOff, dst[last], count);
                    else convertRun(srcType, s, so, src[last], dstType, d, dOff, dst[last], count);
                }
            });
        }
    }

    /** Copies n elements of {@code bytes} bytes each between strided positions (element offsets and strides). */
    private static void moveRun(int bytes, MemorySegment s, long so, long ss, MemorySegment d, long dOff, long ds, long n) {
        if (ss == 1 && ds == 1) {
            MemorySegment.copy(s, so * bytes, d, dOff * bytes, n * bytes);
            return;
        }
        switch (bytes) {
            case 1 -> { for (long i = 0; i < n; i++) d.set(ValueLayout.JAVA_BYTE, dOff + i * ds, s.get(ValueLayout.JAVA_BYTE, so + i * ss)); }
            case 2 -> { for (long i = 0; i < n; i++) d.setAtIndex(ValueLayout.JAVA_SHORT, dOff + i * ds, s.getAtIndex(ValueLayout.JAVA_SHORT, so + i * ss)); }
            case 4 -> { for (long i = 0; i < n; i++) d.setAtIndex(ValueLayout.JAVA_INT, dOff + i * ds, s.getAtIndex(ValueLayout.JAVA_INT, so + i * ss)); }
            default -> { for (long i = 0; i < n; i++) d.setAtIndex(ValueLayout.JAVA_LONG, dOff + i * ds, s.getAtIndex(ValueLayout.JAVA_LONG, so + i * ss)); }
        }
    }

    private static void moveElement(int bytes, MemorySegment s, long si, MemorySegment d, long di) {
        switch (bytes) {
            case 1 -> d.set(ValueLayout.JAVA_BYTE, di, s.get(ValueLayout.JAVA_BYTE, si));
            case 2 -> d.setAtIndex(ValueLayout.JAVA_SHORT, di, s.getAtIndex(ValueLayout.JAVA_SHORT, si));
            case 4 -> d.setAtIndex(ValueLayout.JAVA_INT, di, s.getAtIndex(ValueLayout.JAVA_INT, si));
            default -> d.setAtIndex(ValueLayout.JAVA_LONG, di, s.getAtIndex(ValueLayout.JAVA_LONG, si));
        }
    }

    /**
     * Converts n elements as a cast does: floats to integers toward zero, saturating at the
     * target's range; integers to integers keeping the low bits, integers to a float
     * type through one rounding to float32 (or double for float64, as PyTorch's casts do),
     * floats through double, which is exact for every float source.
     */
    private static void convertRun(DType st, MemorySegment s, long so, long ss, DType dt, MemorySegment d, long dOff, long ds, long n) {
        if (dt.isInteger() && st.isFloatingPoint()) {
            for (long i = 0; i < n; i++) Elements.writeLong(dt, d, dOff + i * ds, Elements.fromDouble(dt, Elements.read(st, s, so + i * ss)));
        } else if (!dt.isFloatingPoint()) {
            for (long i = 0; i < n; i++) Elements.writeLong(dt, d, dOff + i * ds, Elements.readLong(st, s, so + i * ss));
        } else if (st.isInteger()) {
            for (long i = 0; i < n; i++) {
                long v = Elements.readLong(st, s, so + i * ss);
                Elements.write(dt, d, dOff + i * ds, dt == DType.FLOAT64 ? Elements.toDouble(st, v) : Elements.toFloat(st, v));
            }
        } else {
            for (long i = 0; i < n; i++) Elements.write(dt, d, dOff + i * ds, Elements.read(st, s, so + i * ss));
        }
    }
}
