package dev.kiln.ops;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnTypeException;

/**
 * Elementwise functions of two arguments. {@link #apply} is the reference semantics
 * in double precision (integer kernels use {@link #applyLong} where it differs).
 */
public enum BinaryFn {
    ADD(Kind.ARITHMETIC) { public double apply(double a, double b) { return a + b; } },
    SUB(Kind.ARITHMETIC) { public double apply(double a, double b) { return a - b; } },
    MUL(Kind.ARITHMETIC) { public double apply(double a, double b) { return a * b; } },
    /** True division: integer operands give float32, as PyTorch's {@code /}. */
    DIV(Kind.TRUE_DIVISION) { public double apply(double a, double b) { return a / b; } },
    /** Division rounded toward zero (PyTorch {@code rounding_mode="trunc"}, C and ONNX integer Div). */
    TRUNC_DIV(Kind.ARITHMETIC) {
        public double apply(double a, double b) { double q = a / b; return q < 0 ? Math.ceil(q) : Math.floor(q); }
        public long applyLong(long a, long b) { return a / checkDivisor(b); }
    },
    /** Division rounded down (PyTorch {@code rounding_mode="floor"}, Python's {@code //}). */
    FLOOR_DIV(Kind.ARITHMETIC) {
        public double apply(double a, double b) { return Math.floor(a / b); }
        public long applyLong(long a, long b) { return Math.floorDiv(a, checkDivisor(b)); }
    },
    POW(Kind.ARITHMETIC) {
        public double apply(double a, double b) { return Math.pow(a, b); }
        public long applyLong(long a, long b) {
            if (b < 0) {
                if (a == 1) return 1;
                if (a == -1) return (b & 1) == 0 ? 1 : -1;
                throw new ArithmeticException("pow: integers cannot be raised to negative integer powers");
            }
            long r = 1, base = a;
            for (long e = b; e > 0; e >>= 1) {
                if ((e & 1) != 0) r *= base;
                base *= base;
            }
            return r;
        }
    },
    /** Elementwise minimum; NaN propagates, as in PyTorch. */
    MINIMUM(Kind.ARITHMETIC) { public double apply(double a, double b) { return Math.min(a, b); } },
    /** Elementwise maximum; NaN propagates, as in PyTorch. */
    MAXIMUM(Kind.ARITHMETIC) { public double apply(double a, double b) { return Math.max(a, b); } },
    EQ(Kind.COMPARISON) { public double apply(double a, double b) { return a == b ? 1 : 0; } },
    NE(Kind.COMPARISON) { public double apply(double a, double b) { return a != b ? 1 : 0; } },
    LT(Kind.COMPARISON) { public double apply(double a, double b) { return a < b ? 1 : 0; } },
    LE(Kind.COMPARISON) { public double apply(double a, double b) { return a <= b ? 1 : 0; } },
    GT(Kind.COMPARISON) { public double apply(double a, double b) { return a > b ? 1 : 0; } },
    GE(Kind.COMPARISON) { public double apply(double a, double b) { return a >= b ? 1 : 0; } },
    LOGICAL_AND(Kind.LOGICAL) { public double apply(double a, double b) { return a != 0 && b != 0 ? 1 : 0; } },
    LOGICAL_OR(Kind.LOGICAL) { public double apply(double a, double b) { return a != 0 || b != 0 ? 1 : 0; } },
    LOGICAL_XOR(Kind.LOGICAL) { public double apply(double a, double b) { return (a != 0) != (b != 0) ? 1 : 0; } },
    BITWISE_AND(Kind.BITWISE) { public double apply(double a, double b) { return applyLong((long) a, (long) b); } },
    BITWISE_OR(Kind.BITWISE) { public double apply(double a, double b) { return applyLong((long) a, (long) b); } },
    BITWISE_XOR(Kind.BITWISE) { public double apply(double a, double b) { return applyLong((long) a, (long) b); } },
    /** a shifted left by b bits; 0 from a shift of 64 or more (or a negative one), as NumPy's wide shifts give. */
    LEFT_SHIFT(Kind.BITWISE) { public double apply(double a, double b) { return applyLong((long) a, (long) b); } },
    /**
     * a shifted right by b bits, arithmetically for signed types (logically for uint64, by its
     * kernels); a shift of 64 or more (or a negative one) leaves only the sign.
     */
    RIGHT_SHIFT(Kind.BITWISE) { public double apply(double a, double b) { return applyLong((long) a, (long) b); } };

    /** BITWISE: integers (and bool, for and, or and xor) only, computed in their own type. */
    public enum Kind { ARITHMETIC, TRUE_DIVISION, COMPARISON, LOGICAL, BITWISE }

    private final Kind kind;

    BinaryFn(Kind kind) { this.kind = kind; }

    public Kind kind() { return kind; }

    /** The reference in double precision (for the bitwise functions, {@link #applyLong} of the integral operands). */
    public abstract double apply(double a, double b);

    /** Integer semantics; wraps on overflow like Java and PyTorch integer tensors. */
    public long applyLong(long a, long b) {
        return switch (this) {
            case ADD -> a + b;
            case SUB -> a - b;
            case MUL -> a * b;
            case MINIMUM -> Math.min(a, b);
            case MAXIMUM -> Math.max(a, b);
            case BITWISE_AND -> a & b;
            case BITWISE_OR -> a | b;
            case BITWISE_XOR -> a ^ b;
            case LEFT_SHIFT -> b < 0 || b >= Long.SIZE ? 0 : a << b;
            case RIGHT_SHIFT -> b < 0 || b >= Long.SIZE ? a >> (Long.SIZE - 1) : a >> b;
            default -> (long) apply(a, b);
        };
    }

    private static long checkDivisor(long b) {
        if (b == 0) throw new ArithmeticException("integer division by zero");
        return b;
    }

    public String opName() { return name().toLowerCase(java.util.Locale.ROOT); }

    /** The dtype computation runs in, given the promoted operand dtype. */
    public DType computeType(DType promoted) {
        if (kind == Kind.TRUE_DIVISION && !promoted.isFloatingPoint()) return DType.FLOAT32;
        if (kind == Kind.BITWISE) {
            boolean shift = this == LEFT_SHIFT || this == RIGHT_SHIFT;
            if (promoted.isFloatingPoint() || shift && promoted == DType.BOOL) {
                throw new KilnTypeException(opName() + ": not supported for " + promoted + " tensors (integer"
                        + (shift ? "" : " or bool") + " tensors only)");
            }
            return promoted;
        }
        if (kind == Kind.ARITHMETIC && promoted == DType.BOOL) {
            return switch (this) {
                case ADD, MUL, MINIMUM, MAXIMUM -> DType.BOOL;
                default -> throw new KilnTypeException(opName() + ": not supported for bool tensors"
                        + (this == SUB ? "; use logical_xor instead" : ""));
            };
        }
        return promoted;
    }

    /** The result dtype, given the promoted operand dtype. */
    public DType resultType(DType promoted) {
        return kind == Kind.COMPARISON || kind == Kind.LOGICAL ? DType.BOOL : computeType(promoted);
    }
}
