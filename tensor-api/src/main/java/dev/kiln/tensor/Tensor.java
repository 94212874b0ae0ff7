package dev.kiln.tensor;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * An n-dimensional array (rank 0 to 8) in off-heap memory, with PyTorch's operations
 * and NumPy broadcasting. Ops run eagerly, one kernel each, unless the tensor is
 * being traced inside {@code Kiln.compile}, where they record a graph instead.
 *
 * <p>Views (reshape where possible, transpose, permute, slice, expand, squeeze,
 * unsqueeze, diagonal) share memory with their base and copy nothing.
 *
 * <p>A tensor is either concrete (it has storage) or symbolic (a tracer's
 * placeholder with shape and dtype only); asking a symbolic tensor for data is a
 * graph break, handled by the tracer.
 */
public final class Tensor {
    private final DType dtype;
    private final Layout layout;
    private final Storage storage;
    private final Object symbolicHandle;

    private Tensor(DType dtype, Layout layout, Storage storage, Object symbolicHandle) {
        this.dtype = dtype;
        this.layout = layout;
        this.storage = storage;
        this.symbolicHandle = symbolicHandle;
    }

    // ================================================================ creation

    /** An uninitialised contiguous tensor: the caller writes every element (kernels do). */
    public static Tensor empty(DType dtype, Shape shape) {
        return new Tensor(dtype, Layout.contiguous(shape), Storage.allocate(shape.numel() * dtype.byteSize()), null);
    }

    /** A view of existing storage; the layout must stay within it. */
    public static Tensor fromStorage(DType dtype, Layout layout, Storage storage) {
        return new Tensor(dtype, layout, storage, null);
    }

    /** A tracer's placeholder: shape and dtype without data. */
    public static Tensor symbolic(TensorMeta meta, Object handle) {
        return new Tensor(meta.dtype(), Layout.contiguous(meta.shape()), null, handle);
    }

    public static Tensor of(float[] data, int... shape) { return fromArray(DType.FLOAT32, data, ValueLayout.JAVA_FLOAT, data.length, shape); }

    public static Tensor of(double[] data, int... shape) { return fromArray(DType.FLOAT64, data, ValueLayout.JAVA_DOUBLE, data.length, shape); }

    public static Tensor of(int[] data, int... shape) { return fromArray(DType.INT32, data, ValueLayout.JAVA_INT, data.length, shape); }

    public static Tensor of(long[] data, int... shape) { return fromArray(DType.INT64, data, ValueLayout.JAVA_LONG, data.length, shape); }

    /** An int8 tensor (Java's byte); for uint8 data, {@code .to(DType.UINT8)} keeps the bits. */
    public static Tensor of(byte[] data, int... shape) { return fromArray(DType.INT8, data, ValueLayout.JAVA_BYTE, data.length, shape); }

    /** An int16 tensor (Java's short); for uint16 data, {@code .to(DType.UINT16)} keeps the bits. */
    public static Tensor of(short[] data, int... shape) { return fromArray(DType.INT16, data, ValueLayout.JAVA_SHORT, data.length, shape); }

    /** A tensor of {@code dtype} holding {@code length} elements of the Java array {@code data} (of {@code layout}'s type). */
    private static Tensor fromArray(DType dtype, Object data, ValueLayout layout, int length, int[] shape) {
        Tensor t = empty(dtype, checkSize("of", length, shape));
        MemorySegment.copy(data, 0, t.storage.segment(), layout, 0, length);
        return t;
    }

    public static Tensor of(boolean[] data, int... shape) {
        Tensor t = empty(DType.BOOL, checkSize("of", data.length, shape));
        for (int i = 0; i < data.length; i++) t.storage.segment().set(ValueLayout.JAVA_BYTE, i, (byte) (data[i] ? 1 : 0));
        return t;
    }

    /** A 1-D float32 tensor of the given values. */
    public static Tensor vector(float... data) { return of(data, data.length); }

    /** A 0-dimensional float32 tensor. */
    public static Tensor scalar(float value) { return of(new float[] {value}); }

    /** A 0-dimensional tensor of the given dtype. */
    public static Tensor scalar(double value, DType dtype) { return full(value, dtype); }

    public static Tensor zeros(int... shape) { return full(0, DType.FLOAT32, shape); }
    public static Tensor zeros(DType dtype, int... shape) { return full(0, dtype, shape); }
    public static Tensor ones(int... shape) { return full(1, DType.FLOAT32, shape); }
    public static Tensor ones(DType dtype, int... shape) { return full(1, dtype, shape); }
    public static Tensor full(double value, int... shape) { return full(value, DType.FLOAT32, shape); }

    /** {@code value} everywhere; like PyTorch, a value the dtype cannot hold (300 as int8, 1e5 as float16) is an error. */
    public static Tensor full(double value, DType dtype, int... shape) {
        if (!dtype.holds(value)) throw new KilnTypeException("full: value " + value + " cannot be converted to " + dtype + " without overflow");
        return Dispatch.apply1(new Op.Full(Shape.of(shape), dtype, value));
    }

    /** {@code 0, 1, ..., end-1} as int64, like {@code torch.arange(end)}. */
    public static Tensor arange(long end) { return arange(0, end, 1); }

    /** Integer range {@code [start, end)} with the given step, as int64, exact at any magnitude. */
    public static Tensor arange(long start, long end, long step) {
        if (step == 0) throw new KilnException("arange: step must be non-zero");
        // The length in exact arithmetic: end - start may not fit a long, and doubles would round it.
        long n = java.math.BigInteger.valueOf(end).subtract(java.math.BigInteger.valueOf(start))
                .add(java.math.BigInteger.valueOf(step - Long.signum(step))).divide(java.math.BigInteger.valueOf(step)).longValueExact();
        if (n < 0) {
            throw new KilnException("arange: upper bound and step are inconsistent: start " + start + ", end " + end + ", step " + step);
        }
        return Dispatch.apply1(Op.Arange.ofLongs(start, step, Math.toIntExact(n), DType.INT64));
    }

    /** Range {@code [start, end)} with the given step and dtype; the length is {@code ceil((end-start)/step)}. */
    public static Tensor arange(double start, double end, double step, DType dtype) {
        if (step == 0) throw new KilnException("arange: step must be non-zero");
        long n = (long) Math.ceil((end - start) / step);
        if (n < 0) {
            throw new KilnException("arange: upper bound and step are inconsistent: start " + start + ", end " + end + ", step " + step);
        }
        return Dispatch.apply1(new Op.Arange(start, step, Math.toIntExact(n), dtype));
    }

    /** The n-by-n identity matrix in float32. */
    public static Tensor eye(int n) { return eye(n, n, DType.FLOAT32); }

    public static Tensor eye(int rows, int cols, DType dtype) {
        Tensor r = arange(rows).reshape(rows, 1);
        Tensor c = arange(cols).reshape(1, cols);
        return r.eq(c).to(dtype);
    }

    /** Uniform random floats in [0, 1) from a seed: the same seed gives the same tensor everywhere. */
    public static Tensor rand(long seed, int... shape) {
        SplittableRandom rng = new SplittableRandom(seed);
        Shape s = Shape.of(shape);
        float[] data = new float[Math.toIntExact(s.numel())];
        for (int i = 0; i < data.length; i++) data[i] = (float) rng.nextDouble();
        return of(data, shape);
    }

    /** Standard-normal random floats from a seed. */
    public static Tensor randn(long seed, int... shape) {
        return of(standardNormal(seed, shape), shape);
    }

    /**
     * Normal random floats with the given mean and standard deviation from a seed (as
     * {@code torch.normal}): {@code randn(seed, shape) * std + mean}, each element rounded
     * once from the float32 standard-normal value, in one pass instead of two elementwise ops.
     */
    public static Tensor normal(long seed, double mean, double std, int... shape) {
        if (!(std >= 0) || !Double.isFinite(std) || !Double.isFinite(mean)) {
            throw new IllegalArgumentException("normal: std must be finite and non-negative and mean finite, got mean " + mean + ", std " + std);
        }
        float[] data = standardNormal(seed, shape);
        float m = (float) mean, sd = (float) std;
        for (int i = 0; i < data.length; i++) data[i] = Math.fma(data[i], sd, m);
        return of(data, shape);
    }

    private static float[] standardNormal(long seed, int[] shape) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] data = new float[Math.toIntExact(Shape.of(shape).numel())];
        for (int i = 0; i < data.length; i += 2) {
            // Box-Muller: two independent normals per pair of uniforms.
            double u1 = 1.0 - rng.nextDouble(), u2 = rng.nextDouble();
            double r = Math.sqrt(-2 * Math.log(u1));
            data[i] = (float) (r * Math.cos(2 * Math.PI * u2));
            if (i + 1 < data.length) data[i + 1] = (float) (r * Math.sin(2 * Math.PI * u2));
        }
        return data;
    }

    private static Shape checkSize(String op, int length, int[] shape) {
        Shape s = shape.length == 0 && length != 1 ? Shape.of(length) : Shape.of(shape);
        if (s.numel() != length) {
            throw new KilnShapeException(op + ": " + length + " values cannot fill shape " + s + " (" + s.numel() + " elements)");
        }
        return s;
    }

    // ================================================================ metadata

    public DType dtype() { return dtype; }
    public Shape shape() { return layout.shape(); }
    public int rank() { return layout.shape().rank(); }
    public long numel() { return layout.shape().numel(); }
    /** Size of a dimension; negative indices count from the end. */
    public int size(int dim) { return layout.shape().dim(dim); }
    public long[] strides() { return layout.strides().clone(); }
    public Layout layout() { return layout; }
    public TensorMeta meta() { return new TensorMeta(dtype, layout.shape()); }
    public boolean isContiguous() { return layout.isContiguous(); }
    public boolean isConcrete() { return storage != null; }
    /** The tracer's handle of a symbolic tensor; null for a concrete one. */
    public Object symbolicHandle() { return symbolicHandle; }

    /** The storage, for kernels. Throws for a symbolic tensor. */
    public Storage storage() {
        if (storage == null) throw new KilnException("a symbolic tensor " + meta() + " has no storage");
        return storage;
    }

    /** The same storage seen through another layout (used by view ops). */
    public Tensor withLayout(Layout l) { return new Tensor(dtype, l, storage, symbolicHandle); }

    // ================================================================ host access

    /** Elements in row-major order as floats (converted from the tensor's dtype). */
    public float[] toFloatArray() {
        Tensor c = hostContiguous(DType.FLOAT32);
        return c.storage.segment().asSlice(0, c.numel() * 4).toArray(ValueLayout.JAVA_FLOAT);
    }

    public double[] toDoubleArray() {
        Tensor c = hostContiguous(DType.FLOAT64);
        return c.storage.segment().asSlice(0, c.numel() * 8).toArray(ValueLayout.JAVA_DOUBLE);
    }

    public long[] toLongArray() {
        Tensor c = hostContiguous(DType.INT64);
        return c.storage.segment().asSlice(0, c.numel() * 8).toArray(ValueLayout.JAVA_LONG);
    }

    public int[] toIntArray() {
        Tensor c = hostContiguous(DType.INT32);
        return c.storage.segment().asSlice(0, c.numel() * 4).toArray(ValueLayout.JAVA_INT);
    }

    /** The elements as int16 (integers keep their low 16 bits, as a cast does). */
    public short[] toShortArray() {
        Tensor c = hostContiguous(DType.INT16);
        return c.storage.segment().asSlice(0, c.numel() * 2).toArray(ValueLayout.JAVA_SHORT);
    }

    /** The elements as int8 (integers keep their low 8 bits, as a cast does: uint8 255 reads as -1). */
    public byte[] toByteArray() {
        Tensor c = hostContiguous(DType.INT8);
        return c.storage.segment().asSlice(0, c.numel()).toArray(ValueLayout.JAVA_BYTE);
    }

    public boolean[] toBooleanArray() {
        Tensor c = hostContiguous(DType.BOOL);
        byte[] b = c.storage.segment().asSlice(0, c.numel()).toArray(ValueLayout.JAVA_BYTE);
        boolean[] out = new boolean[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[i] != 0;
        return out;
    }

    /** The single element of a one-element tensor, as a double. */
    public double item() {
        if (numel() != 1) {
            throw new KilnShapeException("item: only one-element tensors can be converted to a scalar, got shape " + shape());
        }
        return toDoubleArray()[0];
    }

    private Tensor hostContiguous(DType target) {
        if (!isConcrete()) return Dispatch.concrete(this).hostContiguous(target);
        return Dispatch.eagerly(() -> {
            Tensor t = dtype == target ? this : to(target);
            return t.isContiguous() && t.layout.offset() == 0 ? t : t.copy();
        });
    }

    /** The element at a flat row-major index, as a double (slow: for tests and printing). */
    public double getDouble(long index) {
        if (!isConcrete()) return Dispatch.concrete(this).getDouble(index);
        return Elements.read(dtype, storage().segment(), elementOffset(index));
    }

    /** The storage element offset of a flat row-major index. */
    public long elementOffset(long index) {
        int[] d = layout.shape().dims();
        long off = layout.offset();
        for (int i = d.length - 1; i >= 0; i--) {
            long c = index % d[i];
            index /= d[i];
            off += c * layout.strides()[i];
        }
        return off;
    }

    // ================================================================ files

    /** Reads a NumPy {@code .npy} file; see {@link Npy} for the dtypes and layouts it accepts. */
    public static Tensor load(java.nio.file.Path path) throws java.io.IOException { return Npy.load(path); }

    /** Writes this tensor as a NumPy {@code .npy} file (bfloat16 is widened to float32); see {@link Npy}. */
    public void save(java.nio.file.Path path) throws java.io.IOException { Npy.save(this, path); }

    // ================================================================ dtype

    /** Converts to another dtype (a copy; this tensor itself when it already has it). */
    public Tensor to(DType target) {
        return target == dtype ? this : Dispatch.apply1(new Op.Cast(target), this);
    }

    /** A contiguous tensor with the same values: this one if already contiguous. */
    public Tensor contiguous() {
        return isConcrete() && isContiguous() ? this : Dispatch.apply1(new Op.Contiguous(), this);
    }

    /** A contiguous copy that shares nothing with this tensor. */
    public Tensor copy() { return Dispatch.apply1(new Op.Contiguous(), this); }

    // ================================================================ pointwise

    private Tensor unary(UnaryFn fn) { return Dispatch.apply1(new Op.Unary(fn), this); }
    private Tensor binary(BinaryFn fn, Tensor other) { return Dispatch.apply1(new Op.Binary(fn), this, other); }
    private Tensor scalarOp(BinaryFn fn, double s, boolean integral) {
        return Dispatch.apply1(new Op.BinaryScalar(fn, s, integral, false), this);
    }

    public Tensor add(Tensor o) { return binary(BinaryFn.ADD, o); }
    public Tensor add(double s) { return scalarOp(BinaryFn.ADD, s, false); }
    public Tensor add(long s) { return scalarOp(BinaryFn.ADD, s, true); }
    public Tensor sub(Tensor o) { return binary(BinaryFn.SUB, o); }
    public Tensor sub(double s) { return scalarOp(BinaryFn.SUB, s, false); }
    public Tensor sub(long s) { return scalarOp(BinaryFn.SUB, s, true); }
    /** {@code s - this}. */
    public Tensor rsub(double s) { return Dispatch.apply1(new Op.BinaryScalar(BinaryFn.SUB, s, false, true), this); }
    public Tensor mul(Tensor o) { return binary(BinaryFn.MUL, o); }
    public Tensor mul(double s) { return scalarOp(BinaryFn.MUL, s, false); }
    public Tensor mul(long s) { return scalarOp(BinaryFn.MUL, s, true); }
    /** True division: integer tensors give float32. */
    public Tensor div(Tensor o) { return binary(BinaryFn.DIV, o); }
    public Tensor div(double s) { return scalarOp(BinaryFn.DIV, s, false); }
    public Tensor div(long s) { return scalarOp(BinaryFn.DIV, s, true); }

    /** Division with rounding: {@link RoundingMode#TRUNC} toward zero, {@link RoundingMode#FLOOR} down. */
    public Tensor div(Tensor o, RoundingMode mode) {
        return binary(mode == RoundingMode.TRUNC ? BinaryFn.TRUNC_DIV : BinaryFn.FLOOR_DIV, o);
    }

    /** {@code s / this}. */
    public Tensor rdiv(double s) { return Dispatch.apply1(new Op.BinaryScalar(BinaryFn.DIV, s, false, true), this); }
    public Tensor pow(Tensor o) { return binary(BinaryFn.POW, o); }
    public Tensor pow(double s) { return scalarOp(BinaryFn.POW, s, false); }
    public Tensor pow(long s) { return scalarOp(BinaryFn.POW, s, true); }
    public Tensor minimum(Tensor o) { return binary(BinaryFn.MINIMUM, o); }
    public Tensor maximum(Tensor o) { return binary(BinaryFn.MAXIMUM, o); }

    public Tensor eq(Tensor o) { return binary(BinaryFn.EQ, o); }
    public Tensor eq(double s) { return scalarOp(BinaryFn.EQ, s, false); }
    public Tensor ne(Tensor o) { return binary(BinaryFn.NE, o); }
    public Tensor ne(double s) { return scalarOp(BinaryFn.NE, s, false); }
    public Tensor lt(Tensor o) { return binary(BinaryFn.LT, o); }
    public Tensor lt(double s) { return scalarOp(BinaryFn.LT, s, false); }
    public Tensor le(Tensor o) { return binary(BinaryFn.LE, o); }
    public Tensor le(double s) { return scalarOp(BinaryFn.LE, s, false); }
    public Tensor gt(Tensor o) { return binary(BinaryFn.GT, o); }
    public Tensor gt(double s) { return scalarOp(BinaryFn.GT, s, false); }
    public Tensor ge(Tensor o) { return binary(BinaryFn.GE, o); }
    public Tensor ge(double s) { return scalarOp(BinaryFn.GE, s, false); }
    public Tensor logicalAnd(Tensor o) { return binary(BinaryFn.LOGICAL_AND, o); }
    public Tensor logicalOr(Tensor o) { return binary(BinaryFn.LOGICAL_OR, o); }
    public Tensor logicalXor(Tensor o) { return binary(BinaryFn.LOGICAL_XOR, o); }
    public Tensor logicalNot() { return unary(UnaryFn.LOGICAL_NOT); }

    // Bitwise, of integer tensors (and, or and xor of bools too); shifts of 64 bits or more leave 0 or the sign.
    public Tensor bitwiseAnd(Tensor o) { return binary(BinaryFn.BITWISE_AND, o); }
    public Tensor bitwiseAnd(long s) { return scalarOp(BinaryFn.BITWISE_AND, s, true); }
    public Tensor bitwiseOr(Tensor o) { return binary(BinaryFn.BITWISE_OR, o); }
    public Tensor bitwiseOr(long s) { return scalarOp(BinaryFn.BITWISE_OR, s, true); }
    public Tensor bitwiseXor(Tensor o) { return binary(BinaryFn.BITWISE_XOR, o); }
    public Tensor bitwiseXor(long s) { return scalarOp(BinaryFn.BITWISE_XOR, s, true); }
    /** ~x; for bool tensors, as PyTorch's {@code ~}, the logical not. */
    public Tensor bitwiseNot() { return dtype == DType.BOOL ? logicalNot() : unary(UnaryFn.BITWISE_NOT); }
    public Tensor bitwiseLeftShift(Tensor o) { return binary(BinaryFn.LEFT_SHIFT, o); }
    public Tensor bitwiseLeftShift(long s) { return scalarOp(BinaryFn.LEFT_SHIFT, s, true); }
    /** Arithmetic for signed types, logical for unsigned ones. */
    public Tensor bitwiseRightShift(Tensor o) { return binary(BinaryFn.RIGHT_SHIFT, o); }
    public Tensor bitwiseRightShift(long s) { return scalarOp(BinaryFn.RIGHT_SHIFT, s, true); }

    public Tensor neg() { return unary(UnaryFn.NEG); }
    public Tensor abs() { return unary(UnaryFn.ABS); }
    public Tensor exp() { return unary(UnaryFn.EXP); }
    public Tensor log() { return unary(UnaryFn.LOG); }
    public Tensor sqrt() { return unary(UnaryFn.SQRT); }
    public Tensor rsqrt() { return unary(UnaryFn.RSQRT); }
    public Tensor sin() { return unary(UnaryFn.SIN); }
    public Tensor cos() { return unary(UnaryFn.COS); }
    public Tensor tanh() { return unary(UnaryFn.TANH); }
    public Tensor sigmoid() { return unary(UnaryFn.SIGMOID); }
    public Tensor erf() { return unary(UnaryFn.ERF); }
    public Tensor relu() { return unary(UnaryFn.RELU); }
    /** GELU, exact (erf) form. */
    public Tensor gelu() { return unary(UnaryFn.GELU); }
    public Tensor silu() { return unary(UnaryFn.SILU); }
    public Tensor softplus() { return unary(UnaryFn.SOFTPLUS); }

    /** Clamps to [min, max]; pass infinities to leave a side open. */
    public Tensor clamp(double min, double max) { return Dispatch.apply1(new Op.Clamp(min, max), this); }
    public Tensor clampMin(double min) { return clamp(min, Double.POSITIVE_INFINITY); }
    public Tensor clampMax(double max) { return clamp(Double.NEGATIVE_INFINITY, max); }

    /** {@code condition ? x : y} elementwise, with broadcasting. */
    public static Tensor where(Tensor condition, Tensor x, Tensor y) {
        return Dispatch.apply1(new Op.Where(), condition, x, y);
    }

    // ================================================================ reductions

    private Tensor reduce(ReduceFn fn, int[] dims, boolean keepdim) {
        return Dispatch.apply1(new Op.Reduce(fn, resolveDims(fn.opName(), dims), keepdim), this);
    }

    private List<Integer> resolveDims(String op, int[] dims) {
        if (dims == null) {
            List<Integer> all = new ArrayList<>();
            for (int i = 0; i < rank(); i++) all.add(i);
            return all;
        }
        boolean[] seen = new boolean[Math.max(rank(), 1)];
        for (int d : dims) {
            int n = Shape.normalizeDim(d, rank(), op, shape());
            if (seen[n]) throw new KilnShapeException(op + ": dimension " + d + " appears more than once in " + Arrays.toString(dims));
            seen[n] = true;
        }
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < rank(); i++) if (seen[i]) out.add(i);
        return out;
    }

    /** Sum of all elements. */
    public Tensor sum() { return reduce(ReduceFn.SUM, null, false); }
    public Tensor sum(int dim) { return reduce(ReduceFn.SUM, new int[] {dim}, false); }
    public Tensor sum(int dim, boolean keepdim) { return reduce(ReduceFn.SUM, new int[] {dim}, keepdim); }
    /** Sum over several dimensions; an empty array reduces nothing. */
    public Tensor sum(int[] dims, boolean keepdim) { return reduce(ReduceFn.SUM, dims, keepdim); }
    public Tensor mean() { return reduce(ReduceFn.MEAN, null, false); }
    public Tensor mean(int dim) { return reduce(ReduceFn.MEAN, new int[] {dim}, false); }
    public Tensor mean(int dim, boolean keepdim) { return reduce(ReduceFn.MEAN, new int[] {dim}, keepdim); }
    public Tensor mean(int[] dims, boolean keepdim) { return reduce(ReduceFn.MEAN, dims, keepdim); }
    public Tensor prod(int[] dims, boolean keepdim) { return reduce(ReduceFn.PROD, dims, keepdim); }

    /** Maximum of all elements (values only, like {@code torch.amax}); an empty reduction gives -inf. */
    public Tensor max() { return reduce(ReduceFn.MAX, null, false); }
    public Tensor max(int dim) { return reduce(ReduceFn.MAX, new int[] {dim}, false); }
    public Tensor max(int dim, boolean keepdim) { return reduce(ReduceFn.MAX, new int[] {dim}, keepdim); }
    public Tensor max(int[] dims, boolean keepdim) { return reduce(ReduceFn.MAX, dims, keepdim); }
    /** Minimum of all elements; an empty reduction gives +inf. */
    public Tensor min() { return reduce(ReduceFn.MIN, null, false); }
    public Tensor min(int dim) { return reduce(ReduceFn.MIN, new int[] {dim}, false); }
    public Tensor min(int dim, boolean keepdim) { return reduce(ReduceFn.MIN, new int[] {dim}, keepdim); }
    public Tensor min(int[] dims, boolean keepdim) { return reduce(ReduceFn.MIN, dims, keepdim); }

    /** Index of the maximum of the flattened tensor. */
    public Tensor argmax() { return reshape(-1).argmax(0, false); }
    public Tensor argmax(int dim, boolean keepdim) { return argmax(dim, keepdim, false); }

    /** Index of the maximum along {@code dim}; ties go to the first index, or the last when {@code lastIndex} (ONNX select_last_index). */
    public Tensor argmax(int dim, boolean keepdim, boolean lastIndex) {
        return Dispatch.apply1(new Op.ArgReduce(true, Shape.normalizeDim(dim, rank(), "argmax", shape()), keepdim, lastIndex), this);
    }

    public Tensor argmin(int dim, boolean keepdim) {
        return Dispatch.apply1(new Op.ArgReduce(false, Shape.normalizeDim(dim, rank(), "argmin", shape()), keepdim, false), this);
    }

    public Tensor cumsum(int dim) { return cumsum(dim, false, false); }

    /** Cumulative sum; {@code exclusive} leaves each element out of its own sum, {@code reverse} sums from the end (ONNX CumSum). */
    public Tensor cumsum(int dim, boolean exclusive, boolean reverse) {
        return Dispatch.apply1(new Op.CumSum(Shape.normalizeDim(dim, rank(), "cumsum", shape()), exclusive, reverse), this);
    }

    /** The k largest elements along the last dimension, sorted: [values, int64 indices]. */
    public Tensor[] topk(int k) { return topk(k, -1, true, true); }

    public Tensor[] topk(int k, int dim, boolean largest, boolean sorted) {
        int d = rank() == 0 ? 0 : Shape.normalizeDim(dim, rank(), "topk", shape());
        return Dispatch.apply(new Op.TopK(k, d, largest, sorted), this);
    }

    // ================================================================ linear algebra and nn

    public Tensor matmul(Tensor o) { return Dispatch.apply1(new Op.MatMul(), this, o); }

    public Tensor softmax(int dim) {
        return Dispatch.apply1(new Op.Softmax(Shape.normalizeDim(dim, rank(), "softmax", shape()), false), this);
    }

    public Tensor logSoftmax(int dim) {
        return Dispatch.apply1(new Op.Softmax(Shape.normalizeDim(dim, rank(), "log_softmax", shape()), true), this);
    }

    public Tensor tril() { return tril(0); }
    public Tensor tril(long diagonal) { return Dispatch.apply1(new Op.Triangle(false, diagonal), this); }
    public Tensor triu() { return triu(0); }
    public Tensor triu(long diagonal) { return Dispatch.apply1(new Op.Triangle(true, diagonal), this); }

    // ================================================================ views and shape

    private Tensor view(Op.ViewOp op) { return Dispatch.apply1(op, this); }

    /** Reshapes without copying where the layout allows, else copies. One dimension may be -1. */
    public Tensor reshape(int... shape) { return view(new Op.Reshape(inferReshape(shape))); }

    private Shape inferReshape(int[] shape) {
        int infer = -1;
        long known = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == -1) {
                if (infer >= 0) throw new KilnShapeException("reshape: only one dimension can be -1, got " + Arrays.toString(shape));
                infer = i;
            } else if (shape[i] < 0) {
                throw new KilnShapeException("reshape: invalid size " + shape[i] + " at dimension " + i + " in " + Arrays.toString(shape));
            } else {
                known *= shape[i];
            }
        }
        int[] out = shape.clone();
        if (infer >= 0) {
            if (known == 0 || numel() % known != 0) {
                throw new KilnShapeException("reshape: shape " + Arrays.toString(shape) + " is invalid for input of shape "
                        + shape() + " (" + numel() + " elements)");
            }
            out[infer] = Math.toIntExact(numel() / known);
        }
        return Shape.of(out);
    }

    /** Flattens to one dimension. */
    public Tensor flatten() { return reshape(-1); }

    /** Flattens dimensions {@code start..end} (inclusive) into one. */
    public Tensor flatten(int start, int end) {
        int s = Shape.normalizeDim(start, rank(), "flatten", shape()), e = Shape.normalizeDim(end, rank(), "flatten", shape());
        if (s > e) {
            throw new KilnShapeException("flatten: start dimension " + start + " comes after end dimension " + end + " in shape " + shape());
        }
        int[] d = shape().dims();
        if (rank() == 0) return reshape(1);
        int[] out = new int[d.length - (e - s)];
        int j = 0;
        for (int i = 0; i < s; i++) out[j++] = d[i];
        long m = 1;
        for (int i = s; i <= e; i++) m *= d[i];
        out[j++] = Math.toIntExact(m);
        for (int i = e + 1; i < d.length; i++) out[j++] = d[i];
        return reshape(out);
    }

    public Tensor permute(int... dims) {
        List<Integer> p = new ArrayList<>();
        for (int d : dims) p.add(d < 0 && d >= -rank() ? d + rank() : d);
        return view(new Op.Permute(p));
    }

    /** Swaps two dimensions. */
    public Tensor transpose(int dim0, int dim1) {
        int a = Shape.normalizeDim(dim0, rank(), "transpose", shape()), b = Shape.normalizeDim(dim1, rank(), "transpose", shape());
        int[] p = new int[rank()];
        for (int i = 0; i < p.length; i++) p[i] = i;
        if (rank() == 0) return this;
        p[a] = b;
        p[b] = a;
        return permute(p);
    }

    /** Transpose of the last two dimensions; like PyTorch, only for matrices or batches of matrices. */
    public Tensor mT() {
        if (rank() < 2) {
            throw new KilnShapeException("mT: tensor.mT is only supported on matrices or batches of matrices. Got "
                    + rank() + "-D tensor of shape " + shape());
        }
        return transpose(-2, -1);
    }

    /**
     * Elements {@code start, start+step, ...} below {@code end} of one dimension, with
     * Python's clamping of out-of-range bounds; negative bounds count from the end, and a
     * negative step walks backwards (from {@code start} down to above {@code end}).
     */
    public Tensor slice(int dim, long start, long end, long step) {
        int d = Shape.normalizeDim(dim, rank(), "slice", shape());
        if (rank() == 0) throw new KilnShapeException("slice: cannot slice a 0-dimensional tensor");
        if (step == 0) throw new KilnShapeException("slice: step cannot be zero");
        long n = size(d);
        long s, e, len;
        if (step > 0) {
            s = clampIndex(start, n, 0, n);
            e = clampIndex(end, n, 0, n);
            len = e > s ? (e - s + step - 1) / step : 0;
        } else {
            s = clampIndex(start, n, -1, n - 1);
            e = clampIndex(end, n, -1, n - 1);
            len = s > e ? (s - e + (-step) - 1) / (-step) : 0;
        }
        return view(new Op.Slice(d, len == 0 ? 0 : s, step, Math.toIntExact(len)));
    }

    public Tensor slice(int dim, long start, long end) { return slice(dim, start, end, 1); }

    private static long clampIndex(long i, long n, long lo, long hi) {
        if (i < 0) i += n;
        return Math.max(lo, Math.min(hi, i));
    }

    /** The sub-tensor at {@code index} of dimension {@code dim}, which is removed. */
    public Tensor select(int dim, long index) {
        int d = Shape.normalizeDim(dim, rank(), "select", shape());
        if (rank() == 0) throw new KilnShapeException("select: cannot select from a 0-dimensional tensor");
        long i = index < 0 ? index + size(d) : index;
        if (i < 0 || i >= size(d)) {
            throw new KilnShapeException("select: index " + index + " is out of range for dimension " + d
                    + " of size " + size(d) + " in shape " + shape());
        }
        return slice(d, i, i + 1, 1).squeeze(d);
    }

    /** Broadcasts to a larger shape without copying; -1 keeps a dimension's size. */
    public Tensor expand(int... shape) {
        int[] out = shape.clone();
        int lead = out.length - rank();
        for (int i = 0; i < out.length; i++) {
            if (out[i] == -1) {
                if (i < lead) throw new KilnShapeException("expand: -1 is not allowed for the new leading dimension " + i);
                out[i] = size(i - lead);
            }
        }
        return view(new Op.Expand(Shape.of(out)));
    }

    public Tensor broadcastTo(Shape shape) { return view(new Op.Expand(shape)); }

    public Tensor squeeze() {
        int[] d = Arrays.stream(shape().dims()).filter(x -> x != 1).toArray();
        return reshape(d);
    }

    public Tensor squeeze(int dim) {
        int d = Shape.normalizeDim(dim, rank(), "squeeze", shape());
        if (rank() == 0 || size(d) != 1) return this;
        int[] dims = shape().dims();
        int[] out = new int[dims.length - 1];
        for (int i = 0, j = 0; i < dims.length; i++) if (i != d) out[j++] = dims[i];
        return reshape(out);
    }

    public Tensor unsqueeze(int dim) {
        int d = Shape.normalizeDim(dim, rank() + 1, "unsqueeze", shape());
        int[] dims = shape().dims();
        int[] out = new int[dims.length + 1];
        for (int i = 0, j = 0; i < out.length; i++) out[i] = i == d ? 1 : dims[j++];
        return reshape(out);
    }

    /** The diagonal of two dimensions, appended as the last dimension (a view). */
    public Tensor diagonal(int dim1, int dim2) {
        return view(new Op.Diagonal(Shape.normalizeDim(dim1, rank(), "diagonal", shape()),
                Shape.normalizeDim(dim2, rank(), "diagonal", shape())));
    }

    /** Splits into chunks of {@code size} along {@code dim} (the last may be smaller); views. */
    public Tensor[] split(int size, int dim) {
        int d = Shape.normalizeDim(dim, rank(), "split", shape());
        if (rank() == 0) throw new KilnShapeException("split: cannot split a 0-dimensional tensor");
        if (size <= 0) throw new KilnShapeException("split: split size must be positive, got " + size);
        int n = size(d);
        int count = Math.max(1, (n + size - 1) / size);
        Tensor[] out = new Tensor[count];
        for (int i = 0; i < count; i++) out[i] = slice(d, (long) i * size, Math.min((long) (i + 1) * size, n), 1);
        return out;
    }

    /** Splits into pieces of the given sizes along {@code dim}, which must add up to its size; views. */
    public Tensor[] split(int[] sizes, int dim) {
        int d = Shape.normalizeDim(dim, rank(), "split", shape());
        if (rank() == 0) throw new KilnShapeException("split: cannot split a 0-dimensional tensor");
        long total = 0;
        for (int s : sizes) {
            if (s < 0) throw new KilnShapeException("split: sizes must be non-negative, got " + Arrays.toString(sizes));
            total += s;
        }
        if (total != size(d)) {
            throw new KilnShapeException("split: sizes " + Arrays.toString(sizes) + " add up to " + total
                    + " but dimension " + d + " of shape " + shape() + " is " + size(d));
        }
        Tensor[] out = new Tensor[sizes.length];
        long at = 0;
        for (int i = 0; i < sizes.length; i++) {
            out[i] = slice(d, at, at + sizes[i], 1);
            at += sizes[i];
        }
        return out;
    }

    // ================================================================ indexing

    /** Rows of this tensor along {@code dim} chosen by integer indices (negative count from the end). */
    public Tensor indexSelect(int dim, Tensor indices) {
        return Dispatch.apply1(new Op.Gather(Shape.normalizeDim(dim, rank(), "index_select", shape())), this, indices);
    }

    /** {@code torch.gather}: picks along {@code dim} by an index tensor of the same rank. */
    public Tensor gather(int dim, Tensor index) {
        return Dispatch.apply1(new Op.GatherElements(Shape.normalizeDim(dim, rank(), "gather", shape())), this, index);
    }

    // ================================================================ misc

    /** Concatenates along an existing dimension. */
    public static Tensor cat(int dim, Tensor... tensors) {
        if (tensors.length == 0) throw new KilnShapeException("cat: expected at least one tensor");
        return Dispatch.apply1(new Op.Concat(Shape.normalizeDim(dim, tensors[0].rank(), "cat", tensors[0].shape())), tensors);
    }

    /** Stacks equally shaped tensors along a new dimension. */
    public static Tensor stack(int dim, Tensor... tensors) {
        if (tensors.length == 0) throw new KilnShapeException("stack: expected at least one tensor");
        Shape first = tensors[0].shape();
        int d = Shape.normalizeDim(dim, first.rank() + 1, "stack", first);
        Tensor[] parts = new Tensor[tensors.length];
        for (int i = 0; i < tensors.length; i++) {
            if (!tensors[i].shape().equals(first)) {
                throw new KilnShapeException("stack: expects each tensor to be equal size, but got " + first
                        + " at entry 0 and " + tensors[i].shape() + " at entry " + i);
            }
            parts[i] = tensors[i].unsqueeze(d);
        }
        return Dispatch.apply1(new Op.Concat(d), parts);
    }

    @Override
    public String toString() {
        if (!isConcrete()) return "Tensor(symbolic " + meta() + ")";
        StringBuilder sb = new StringBuilder("tensor(");
        if (numel() <= 1000) Elements.format(this, sb);
        else sb.append("...");
        return sb.append(", dtype=").append(dtype).append(", shape=").append(shape()).append(')').toString();
    }

    /** Rounding of {@link #div(Tensor, RoundingMode)}. */
    public enum RoundingMode { TRUNC, FLOOR }
}
