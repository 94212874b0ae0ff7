package dev.kiln.ops;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnTypeException;

/**
 * Elementwise functions of one argument. {@link #apply} is the reference semantics
 * in double precision; kernels must agree with it to their documented error.
 */
public enum UnaryFn {
    NEG(Result.SAME) { public double apply(double x) { return -x; } },
    ABS(Result.SAME) { public double apply(double x) { return Math.abs(x); } },
    RELU(Result.SAME) { public double apply(double x) { return x > 0 ? x : (Double.isNaN(x) ? x : 0.0); } },
    EXP(Result.FLOAT) { public double apply(double x) { return Math.exp(x); } },
    LOG(Result.FLOAT) { public double apply(double x) { return Math.log(x); } },
    SQRT(Result.FLOAT) { public double apply(double x) { return Math.sqrt(x); } },
    RSQRT(Result.FLOAT) { public double apply(double x) { return 1.0 / Math.sqrt(x); } },
    SIN(Result.FLOAT) { public double apply(double x) { return Math.sin(x); } },
    COS(Result.FLOAT) { public double apply(double x) { return Math.cos(x); } },
    TANH(Result.FLOAT) { public double apply(double x) { return Math.tanh(x); } },
    SIGMOID(Result.FLOAT) { public double apply(double x) { return SpecialFunctions.sigmoid(x); } },
    ERF(Result.FLOAT) { public double apply(double x) { return SpecialFunctions.erf(x); } },
    GELU(Result.FLOAT) { public double apply(double x) { return SpecialFunctions.geluErf(x); } },
    GELU_TANH(Result.FLOAT) { public double apply(double x) { return SpecialFunctions.geluTanh(x); } },
    SILU(Result.FLOAT) { public double apply(double x) { return x * SpecialFunctions.sigmoid(x); } },
    SOFTPLUS(Result.FLOAT) { public double apply(double x) { return SpecialFunctions.softplus(x); } },
    LOGICAL_NOT(Result.BOOL) { public double apply(double x) { return x == 0 ? 1 : 0; } },
    /** ~x, of integers (its bool form is {@link #LOGICAL_NOT}). */
    BITWISE_NOT(Result.INTEGER) { public double apply(double x) { return ~(long) x; } };

    /** How the result dtype follows from the input dtype. */
    public enum Result {
        /** The input's dtype; bool is rejected. */
        SAME,
        /** Floating inputs keep their dtype; integer and bool inputs give float32, as in PyTorch. */
        FLOAT,
        /** Always bool. */
        BOOL,
        /** The input's dtype, an integer one; floats and bool are rejected. */
        INTEGER
    }

    private final Result result;

    UnaryFn(Result result) { this.result = result; }

    public abstract double apply(double x);

    public String opName() { return name().toLowerCase(java.util.Locale.ROOT); }

    public DType resultType(DType in) {
        return switch (result) {
            case SAME -> {
                if (in == DType.BOOL) {
                    throw new KilnTypeException(opName() + ": not supported for bool tensors");
                }
                yield in;
            }
            case FLOAT -> in.isFloatingPoint() ? in : DType.FLOAT32;
            case BOOL -> DType.BOOL;
            case INTEGER -> {
                if (!in.isInteger()) {
                    throw new KilnTypeException(opName() + ": not supported for " + in + " tensors (integer tensors only"
                            + (in == DType.BOOL ? "; logical_not negates bools" : "") + ")");
                }
                yield in;
            }
        };
    }
}
