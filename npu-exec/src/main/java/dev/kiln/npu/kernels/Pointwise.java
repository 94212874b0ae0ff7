package dev.kiln.npu.kernels;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.TransposedCopy;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Tensor;

import java.util.Arrays;

/**
 * Elementwise kernels with PyTorch semantics. Each op picks where it computes from its
 * compute dtype: float32, float16 and bfloat16 in float32 vectors ({@link FloatKernels},
 * rounding to the half formats on store), float64 in double, and the integer types and bool
 * in long ({@link ScalarKernels}). Inputs of other dtypes are converted on load, so a
 * binary op sees both operands in the compute type, as {@link Op.Binary#computeType} says.
 */
public final class Pointwise {
    private Pointwise() {}

    private enum Domain {
        FLOAT, DOUBLE, LONG;

        static Domain of(DType t) {
            return switch (t) {
                case FLOAT32, FLOAT16, BFLOAT16 -> FLOAT;
                case FLOAT64 -> DOUBLE;
                case INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64, BOOL -> LONG;
            };
        }
    }

    // ---------------------------------------------------------------- unary

    public static void unary(UnaryFn fn, Tensor x, Tensor out) {
        // Float-valued functions compute in the (floating) result type; logical_not tests its input as it is.
        DType compute = fn == UnaryFn.LOGICAL_NOT ? x.dtype() : out.dtype();
        int cost = unaryCost(fn);
        switch (Domain.of(compute)) {
            case FLOAT -> runFloat(out, cost, (in, o, oo, n) -> FloatKernels.unary(fn, in[0].segment, in[0].byteOffset, o, oo, n),
                    FloatBlocks.Input.of(x));
            case DOUBLE -> runArrays(ArrayBlocks.DOUBLES, out, cost, (in, o, n, at) -> ScalarKernels.unary(fn, in[0], o, n),
                    ArrayBlocks.Input.of(x));
            case LONG -> {
                boolean unsigned = compute == DType.UINT64;
                runArrays(ArrayBlocks.LONGS, out, cost, (in, o, n, at) -> ScalarKernels.unary(fn, in[0], o, n, unsigned),
                        ArrayBlocks.Input.of(x));
            }
        }
    }

    private static int unaryCost(UnaryFn fn) {
        return switch (fn) {
            case NEG, ABS, RELU, SQRT, RSQRT, LOGICAL_NOT -> 1;
            case SIN, COS -> 20;
            default -> 8;
        };
    }

    // ---------------------------------------------------------------- binary

    public static void binary(Op.Binary op, Tensor a, Tensor b, Tensor out) {
        DType compute = op.computeType(a.dtype(), b.dtype());
        String operands = "operand shapes " + a.shape() + " and " + b.shape();
        binaryIn(op.fn(), compute, out, operands, Operand.of(a), Operand.of(b));
    }

    /** {@code tensor op scalar}, or {@code scalar op tensor} when {@code scalarFirst}; the scalar is converted to the compute type. */
    public static void binaryScalar(Op.BinaryScalar op, Tensor a, Tensor out) {
        DType compute = op.computeType(a.dtype());
        BinaryFn fn = op.fn();
        String operands = "operand shape " + a.shape() + " and scalar " + scalarText(op);
        if (fn == BinaryFn.POW && !op.scalarFirst() && op.scalar() == 2) {
            // x ** 2 is x * x, one rounding, as exact as pow and far cheaper.
            binaryIn(BinaryFn.MUL, compute, out, operands, Operand.of(a), Operand.of(a));
            return;
        }
        Operand s = Operand.scalar(op.scalar()), t = Operand.of(a);
        if (op.scalarFirst()) binaryIn(fn, compute, out, operands, s, t);
        else binaryIn(fn, compute, out, operands, t, s);
    }

    private static String scalarText(Op.BinaryScalar op) {
        return op.integralScalar() ? Long.toString((long) op.scalar()) : Double.toString(op.scalar());
    }

    private static void binaryIn(BinaryFn fn, DType compute, Tensor out, String operands, Operand a, Operand b) {
        int cost = fn == BinaryFn.POW ? 20 : 1;
        switch (Domain.of(compute)) {
            case FLOAT -> runFloat(out, cost, (in, o, oo, n) -> FloatKernels.binary(fn, in[0].segment, in[0].byteOffset,
                    in[1].segment, in[1].byteOffset, o, oo, n), a.asFloat(compute), b.asFloat(compute));
            case DOUBLE -> runArrays(ArrayBlocks.DOUBLES, out, cost, (in, o, n, at) -> ScalarKernels.binary(fn, in[0], in[1], o, n),
                    a.asDouble(), b.asDouble());
            case LONG -> {
                ScalarKernels.ElementError error = new ScalarKernels.ElementError(fn.opName(), out.shape(), operands);
                boolean unsigned = compute == DType.UINT64;
                runArrays(ArrayBlocks.LONGS, out, cost, (in, o, n, at) -> ScalarKernels.binary(fn, in[0], in[1], o, n, at, error, unsigned),
                        a.asLong(compute), b.asLong(compute));
            }
        }
    }

    /** A binary operand: a tensor, or a host scalar to be converted to the compute type. */
    private record Operand(Tensor tensor, double scalar) {
        static Operand of(Tensor t) { return new Operand(t, 0); }
        static Operand scalar(double v) { return new Operand(null, v); }

        FloatBlocks.Input asFloat(DType compute) {
            return tensor != null ? FloatBlocks.Input.of(tensor) : FloatBlocks.Input.constant(roundToFloat(compute, scalar));
        }

        ArrayBlocks.Input<double[]> asDouble() {
            if (tensor != null) return ArrayBlocks.Input.of(tensor);
            double[] block = new double[ElementwiseLoop.BLOCK];
            Arrays.fill(block, scalar);
            return ArrayBlocks.Input.constant(block);
        }

        ArrayBlocks.Input<long[]> asLong(DType compute) {
            if (tensor != null) return ArrayBlocks.Input.of(tensor);
            long[] block = new long[ElementwiseLoop.BLOCK];
            Arrays.fill(block, integerScalar(compute, scalar));
            return ArrayBlocks.Input.constant(block);
        }
    }

    /**
     * An integral scalar as integer arithmetic in {@code compute} sees it: wrapped to the type,
     * as PyTorch's {@code uint8_tensor + (-1)} adds 255.
     */
    static long integerScalar(DType compute, double scalar) {
        return compute == DType.UINT64 && scalar >= 0x1p63 ? Elements.fromDouble(compute, scalar) : Elements.wrap(compute, (long) scalar);
    }

    /** {@code v} rounded to {@code t} (a float32-computed type) and widened back to float. */
    private static float roundToFloat(DType t, double v) {
        float f = (float) v;
        return switch (t) {
            case FLOAT16 -> Float.float16ToFloat(Float.floatToFloat16(f));
            case BFLOAT16 -> Elements.bf16ToFloat(Elements.floatToBf16(f));
            default -> f;
        };
    }

    // ---------------------------------------------------------------- clamp, where

    /**
     * min(max(x, min), max) in x's dtype: NaN stays NaN, min > max gives max everywhere. For
     * integer tensors the bounds are first rounded inward to integers (clamp(x, 0.5, 2.5) is
     * clamp(x, 1, 2)) and limited to the dtype's range; a NaN bound is rejected.
     */
    public static void clamp(Op.Clamp op, Tensor x, Tensor out) {
        double min = op.min(), max = op.max();
        switch (Domain.of(x.dtype())) {
            case FLOAT -> runFloat(out, 1, (in, o, oo, n) -> FloatKernels.clamp((float) min, (float) max,
                    in[0].segment, in[0].byteOffset, o, oo, n), FloatBlocks.Input.of(x));
            case DOUBLE -> runArrays(ArrayBlocks.DOUBLES, out, 1, (in, o, n, at) -> ScalarKernels.clamp(min, max, in[0], o, n),
                    ArrayBlocks.Input.of(x));
            case LONG -> {
                if (Double.isNaN(min) || Double.isNaN(max)) {
                    throw new KilnTypeException("clamp: bound NaN cannot clamp the integer tensor " + x.dtype() + x.shape()
                            + " (min " + min + ", max " + max + ")");
                }
                // The bounds cast to the dtype, saturating at its range.
                long lo = Elements.fromDouble(x.dtype(), Math.ceil(min)), hi = Elements.fromDouble(x.dtype(), Math.floor(max));
                boolean unsigned = x.dtype() == DType.UINT64;
                runArrays(ArrayBlocks.LONGS, out, 1, (in, o, n, at) -> {
                    if (unsigned) ScalarKernels.clampUnsigned(lo, hi, in[0], o, n);
                    else ScalarKernels.clamp(lo, hi, in[0], o, n);
                }, ArrayBlocks.Input.of(x));
            }
        }
    }

    /** where(c, x, y): x where the bool condition holds, else y; all three broadcast, x and y promote to out's dtype. */
    public static void where(Tensor c, Tensor x, Tensor y, Tensor out) {
        switch (Domain.of(out.dtype())) {
            case FLOAT -> runFloat(out, 1, (in, o, oo, n) -> FloatKernels.where(in[0].segment, in[0].byteOffset,
                    in[1].segment, in[1].byteOffset, in[2].segment, in[2].byteOffset, o, oo, n),
                    FloatBlocks.Input.of(c), FloatBlocks.Input.of(x), FloatBlocks.Input.of(y));
            case DOUBLE -> runArrays(ArrayBlocks.DOUBLES, out, 1, (in, o, n, at) -> ScalarKernels.where(in[0], in[1], in[2], o, n),
                    ArrayBlocks.Input.of(c), ArrayBlocks.Input.of(x), ArrayBlocks.Input.of(y));
            case LONG -> runArrays(ArrayBlocks.LONGS, out, 1, (in, o, n, at) -> ScalarKernels.where(in[0], in[1], in[2], o, n),
                    ArrayBlocks.Input.of(c), ArrayBlocks.Input.of(x), ArrayBlocks.Input.of(y));
        }
    }

    // ---------------------------------------------------------------- copy, fill, arange

    /**
     * Copies x into out, converting dtype as a cast does (see {@link Staging} for the
     * conversions: floats to integers truncate toward zero and saturate, NaN becomes 0;
     * anything to bool is "non-zero"). A same-dtype copy moves raw bits.
     */
    public static void copy(Tensor x, Tensor out) {
        if (x.dtype() == out.dtype()) {
            copyRaw(x, out);
            return;
        }
        DType to = out.dtype();
        // Integer targets from floating sources go through double, whose store saturates at the
        // target's own range; integer-to-integer stays in long, whose store wraps as PyTorch does.
        if (to == DType.FLOAT64 || (!to.isFloatingPoint() && x.dtype().isFloatingPoint())) {
            runArrays(ArrayBlocks.DOUBLES, out, 1, (in, o, n, at) -> ScalarKernels.identity(in[0], o, n), ArrayBlocks.Input.of(x));
        } else if (to.isFloatingPoint()) {
            runFloat(out, 1, (in, o, oo, n) -> FloatKernels.identity(in[0].segment, in[0].byteOffset, o, oo, n), FloatBlocks.Input.of(x));
        } else {
            runArrays(ArrayBlocks.LONGS, out, 1, (in, o, n, at) -> ScalarKernels.identity(in[0], o, n), ArrayBlocks.Input.of(x));
        }
    }

    private static void copyRaw(Tensor x, Tensor out) {
        int bytes = x.dtype().byteSize();
        var src = x.storage().segment();
        var dst = out.storage().segment();
        long outBase = out.layout().offset();
        TransposedCopy.Plan transposed = out.isContiguous() ? TransposedCopy.payingPlan(x) : null;
        if (transposed != null) {
            TransposedCopy.copyAll(transposed, src, dst, outBase, null);
            return;
        }
        ElementwiseLoop.run(out.shape(), new Layout[] {x.layout()}, 1, strides -> (outIndex, offsets, n) ->
                Staging.copyRaw(bytes, src, offsets[0], strides[0], n, dst, outBase + outIndex));
    }

    /** Sets every element to {@code value}, converted as a cast to out's dtype does. */
    public static void fill(double value, Tensor out) {
        long numel = out.numel();
        var dst = out.storage().segment();
        long base = out.layout().offset();
        Parallel.forRange(numel, (from, to) -> {
            double[] block = new double[(int) Math.min(ElementwiseLoop.BLOCK, to - from)];
            Arrays.fill(block, value);
            for (long i = from; i < to; i += block.length) {
                Staging.storeDoubles(block, (int) Math.min(block.length, to - i), out.dtype(), dst, base + i);
            }
        });
    }

    /**
     * {@code out[i] = start + i * step}: in long arithmetic from the op's exact start and step
     * for integer outputs with integral ones (exact at any size), otherwise in double, converted on store.
     */
    public static void arange(Op.Arange op, Tensor out) {
        long numel = out.numel();
        var dst = out.storage().segment();
        long base = out.layout().offset();
        DType t = out.dtype();
        boolean integral = op.integral();
        double start = op.start(), step = op.step();
        long exactStart = op.exactStart(), exactStep = op.exactStep();
        Parallel.forRange(numel, (from, to) -> {
            int size = (int) Math.min(ElementwiseLoop.BLOCK, to - from);
            long[] longs = integral ? new long[size] : null;
            double[] doubles = integral ? null : new double[size];
            for (long i = from; i < to; i += size) {
                int n = (int) Math.min(size, to - i);
                if (integral) {
                    for (int j = 0; j < n; j++) longs[j] = exactStart + (i + j) * exactStep;
                    Staging.storeLongs(longs, n, t, dst, base + i);
                } else {
                    for (int j = 0; j < n; j++) doubles[j] = start + (i + j) * step;
                    Staging.storeDoubles(doubles, n, t, dst, base + i);
                }
            }
        });
    }

    // ---------------------------------------------------------------- drivers

    private static void runFloat(Tensor out, int cost, FloatBlocks.Kernel kernel, FloatBlocks.Input... inputs) {
        Layout[] layouts = Arrays.stream(inputs).filter(i -> i.tensor() != null).map(i -> i.tensor().layout()).toArray(Layout[]::new);
        int block = blockSize(out);
        ElementwiseLoop.run(out.shape(), layouts, cost, strides -> new FloatBlocks(inputs, strides, out, block, kernel));
    }

    @SafeVarargs
    private static <A> void runArrays(ArrayBlocks.Domain<A> domain, Tensor out, int cost, ArrayBlocks.Kernel<A> kernel,
                                      ArrayBlocks.Input<A>... inputs) {
        Layout[] layouts = Arrays.stream(inputs).filter(i -> i.tensor() != null).map(i -> i.tensor().layout()).toArray(Layout[]::new);
        int block = blockSize(out);
        ElementwiseLoop.run(out.shape(), layouts, cost, strides -> new ArrayBlocks<>(domain, inputs, strides, out, block, kernel));
    }

    /** Scratch per range need not exceed the whole output. */
    private static int blockSize(Tensor out) {
        return (int) Math.min(ElementwiseLoop.BLOCK, Math.max(1, out.numel()));
    }
}
