package dev.kiln.opt;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;

import java.lang.foreign.MemorySegment;
import java.util.OptionalDouble;

/**
 * What the eager kernels compute for one element, so passes can reason about uniform
 * ({@code Full}) values at compile time and get the bits a kernel would store.
 *
 * <p>The kernels pick a compute domain from the op's compute dtype (see
 * {@code dev.kiln.npu.kernels.Pointwise}): float32, float16 and bfloat16 compute in float
 * (operands loaded as float, results rounded on store), float64 in double, and the
 * integer types and bool in long (wrapping to their width on store). Results are computed
 * with the registry's reference functions ({@link UnaryFn#apply}, {@link BinaryFn#apply},
 * {@link BinaryFn#applyLong}) and rounded to the result dtype with {@link Elements} on a
 * scratch segment, exactly as a store does. For the correctly rounded functions (arithmetic,
 * comparisons, min/max, sqrt, pow, casts) that is bit-for-bit what the kernels give; for the float32
 * transcendental kernels (exp, tanh, erf, sin, ...), which are accurate to a few ulp, the
 * folded value is the correctly rounded one.
 *
 * <p>Every method returns empty when the value cannot be known exactly: an integer
 * division by zero or a negative integer power (which must still fail at run time), a
 * clamp of integers with a NaN bound (likewise), a float-to-int32 conversion out of
 * range (where kernels saturate or wrap depending on the conversion path), an int64
 * that a double, and so a {@code Full}, cannot hold, or integer arithmetic in uint64 (its
 * values past 2^63 are negative as longs; such graphs are left to the kernels).
 */
final class ElementSemantics {
    private ElementSemantics() {}

    /** Where kernels compute for a compute dtype. */
    enum Domain {
        FLOAT, DOUBLE, LONG;

        static Domain of(DType compute) {
            return switch (compute) {
                case FLOAT32, FLOAT16, BFLOAT16 -> FLOAT;
                case FLOAT64 -> DOUBLE;
                case INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64, BOOL -> LONG;
            };
        }
    }

    // ---------------------------------------------------------------- stores

    /** The value a store of double {@code v} into {@code dtype} keeps (as Full fills and casts from floats store). */
    static OptionalDouble store(DType dtype, double v) {
        // Kernels convert double to a narrower integer with a saturating cast, casts via long (wrapping):
        // the two agree exactly when the value is in range, and only then is the result known.
        if (dtype.isInteger() && Elements.fromDouble(dtype, v) != (long) v) return OptionalDouble.empty();
        MemorySegment scratch = scratch();
        Elements.write(dtype, scratch, 0, v);
        return dtype == DType.INT64 ? exactly(Elements.readLong(dtype, scratch, 0))
                : OptionalDouble.of(Elements.read(dtype, scratch, 0));
    }

    /** The value a store of long {@code v} into {@code dtype} keeps (integer arithmetic wraps into int32). */
    static OptionalDouble storeLong(DType dtype, long v) {
        if (dtype.isFloatingPoint()) {
            // Kernels round a long straight to float; Elements goes through double. Only exact doubles agree.
            return exactly(v).isPresent() ? store(dtype, v) : OptionalDouble.empty();
        }
        // A uint64 past 2^63 is a negative long here, which a Full's fill would not give back.
        if (dtype == DType.UINT64) return v >= 0 ? exactly(v) : OptionalDouble.empty();
        MemorySegment scratch = scratch();
        Elements.writeLong(dtype, scratch, 0, v);
        return exactly(Elements.readLong(dtype, scratch, 0));
    }

    /** The element value of {@code Full} {@code f} as its fill stores it. */
    static OptionalDouble fullValue(Op.Full f) { return store(f.dtype(), f.value()); }

    /** {@code v} as a double, when a double (and so a {@code Full}) holds it exactly. */
    private static OptionalDouble exactly(long v) {
        // (long) 2^63 saturates to Long.MAX_VALUE, so that value round-trips as well, and a fill gives it back.
        return (long) (double) v == v ? OptionalDouble.of(v) : OptionalDouble.empty();
    }

    private static MemorySegment scratch() {
        return MemorySegment.ofArray(new long[1]);
    }

    // ---------------------------------------------------------------- operands

    /** Stored element {@code v} as a kernel computing in {@code compute} loads it. */
    static double load(DType compute, double v) {
        return switch (Domain.of(compute)) {
            case FLOAT -> (float) v;
            case DOUBLE -> v;
            case LONG -> (long) v;
        };
    }

    /** A host scalar as a kernel computing in {@code compute} sees it: rounded to the compute dtype itself. */
    static OptionalDouble loadScalar(DType compute, double scalar) {
        return switch (Domain.of(compute)) {
            case FLOAT -> store(compute, scalar);
            case DOUBLE -> OptionalDouble.of(scalar);
            // Wrapped to the type, as the kernel does (uint64 is never folded).
            case LONG -> OptionalDouble.of(Elements.wrap(compute, (long) scalar));
        };
    }

    // ---------------------------------------------------------------- ops

    /** {@code fn(x)} for stored element x of dtype {@code in}, stored as {@code out}. */
    static OptionalDouble unary(UnaryFn fn, DType in, double x, DType out) {
        // As the kernel: logical_not tests its input as it is, the others compute in the result type.
        DType compute = fn == UnaryFn.LOGICAL_NOT ? in : out;
        double a = load(compute, x);
        return switch (Domain.of(compute)) {
            // The reference erf drops the sign of -0.0; the float kernel, like C's erf, keeps it.
            case FLOAT -> store(out, fn == UnaryFn.ERF && a == 0 ? a : (float) fn.apply(a));
            case DOUBLE -> store(out, fn.apply(a));
            case LONG -> {
                if (compute == DType.UINT64) yield OptionalDouble.empty();
                long v = (long) a;
                yield switch (fn) {
                    case NEG -> storeLong(out, -v);
                    case ABS -> storeLong(out, Math.abs(v));
                    case RELU -> storeLong(out, Math.max(v, 0));
                    case BITWISE_NOT -> storeLong(out, ~v);
                    case LOGICAL_NOT -> storeLong(out, v == 0 ? 1 : 0);
                    default -> OptionalDouble.empty();
                };
            }
        };
    }

    /** {@code fn(a, b)} for operands already loaded into the domain of {@code compute}, stored as {@code out}. */
    static OptionalDouble binary(BinaryFn fn, DType compute, double a, double b, DType out) {
        return switch (Domain.of(compute)) {
            // Float kernels compute in float: one rounding of the exact result, which is what rounding
            // the double result gives for these functions (double carries more than 2 * 24 + 2 bits).
            case FLOAT -> store(out, (float) fn.apply(a, b));
            case DOUBLE -> store(out, fn.apply(a, b));
            case LONG -> {
                if (compute == DType.UINT64) yield OptionalDouble.empty();
                long x = (long) a, y = (long) b;
                yield switch (fn) {
                    case TRUNC_DIV, FLOOR_DIV -> y == 0 ? OptionalDouble.empty() : storeLong(out, fn.applyLong(x, y));
                    case POW -> y < 0 && x != 1 && x != -1 ? OptionalDouble.empty() : storeLong(out, fn.applyLong(x, y));
                    case ADD, SUB, MUL, MINIMUM, MAXIMUM, BITWISE_AND, BITWISE_OR, BITWISE_XOR, LEFT_SHIFT, RIGHT_SHIFT ->
                            storeLong(out, fn.applyLong(x, y));
                    // Comparisons and logic of exact doubles are exact.
                    case EQ, NE, LT, LE, GT, GE, LOGICAL_AND, LOGICAL_OR, LOGICAL_XOR -> storeLong(out, (long) fn.apply(x, y));
                    case DIV -> OptionalDouble.empty();
                };
            }
        };
    }

    /** {@code a op b} for stored elements of dtypes {@code ta} and {@code tb}, stored as {@code out}. */
    static OptionalDouble binary(Op.Binary op, DType ta, double a, DType tb, double b, DType out) {
        DType compute = op.computeType(ta, tb);
        return binary(op.fn(), compute, load(compute, a), load(compute, b), out);
    }

    /** {@code x op scalar} (or {@code scalar op x}) for stored element x of dtype {@code tx}, stored as {@code out}. */
    static OptionalDouble binaryScalar(Op.BinaryScalar op, DType tx, double x, DType out) {
        DType compute = op.computeType(tx);
        double a = load(compute, x);
        if (op.fn() == BinaryFn.POW && !op.scalarFirst() && op.scalar() == 2) {
            return binary(BinaryFn.MUL, compute, a, a, out); // the kernel computes x ** 2 as x * x
        }
        OptionalDouble s = loadScalar(compute, op.scalar());
        if (s.isEmpty()) return s;
        double b = s.getAsDouble();
        return op.scalarFirst() ? binary(op.fn(), compute, b, a, out) : binary(op.fn(), compute, a, b, out);
    }

    /** Stored element x of dtype {@code from} converted to {@code to}, as the copy kernel converts. */
    static OptionalDouble cast(DType from, double x, DType to) {
        if (from == to) return OptionalDouble.of(x);
        if (from == DType.UINT64) return OptionalDouble.empty();
        if (to == DType.FLOAT64 || (!to.isFloatingPoint() && from.isFloatingPoint())) return store(to, x);
        if (to.isFloatingPoint()) return store(to, (float) x);
        return storeLong(to, (long) x);
    }

    /** Whether the kernel of {@code op} over an x of dtype {@code t} fails before looking at any element. */
    static boolean rejectsBeforeElements(Op op, DType t) {
        return op instanceof Op.Clamp c && Domain.of(t) == Domain.LONG && (Double.isNaN(c.min()) || Double.isNaN(c.max()));
    }

    /** {@code min(max(x, min), max)} for stored element x of dtype {@code t}. */
    static OptionalDouble clamp(Op.Clamp op, DType t, double x) {
        return switch (Domain.of(t)) {
            case FLOAT -> store(t, Math.min(Math.max((float) x, (float) op.min()), (float) op.max()));
            case DOUBLE -> store(t, Math.min(Math.max(x, op.min()), op.max()));
            case LONG -> {
                if (rejectsBeforeElements(op, t) || t == DType.UINT64) yield OptionalDouble.empty();
                // Integer bounds round inward and are cast to the dtype (saturating), as the kernel does.
                long lo = Elements.fromDouble(t, Math.ceil(op.min())), hi = Elements.fromDouble(t, Math.floor(op.max()));
                yield storeLong(t, Math.min(Math.max((long) x, lo), hi));
            }
        };
    }
}
