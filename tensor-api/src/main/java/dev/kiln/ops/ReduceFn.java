package dev.kiln.ops;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnTypeException;

/** Reductions over a set of dimensions. An empty set reduces to the identity (sum 0, max -inf, mean NaN). */
public enum ReduceFn {
    SUM, MEAN, PROD, MAX, MIN;

    public String opName() { return name().toLowerCase(java.util.Locale.ROOT); }

    public DType resultType(DType in) {
        return switch (this) {
            // Integers and bool sum in int64, as in PyTorch; uint64 keeps its bits' meaning.
            case SUM, PROD -> in.isFloatingPoint() || in == DType.UINT64 ? in : DType.INT64;
            case MEAN -> {
                if (!in.isFloatingPoint()) {
                    throw new KilnTypeException("mean: could not infer output dtype: input dtype must be"
                            + " floating point, got " + in + "; cast it first, e.g. x.to(DType.FLOAT32).mean(...)");
                }
                yield in;
            }
            case MAX, MIN -> in;
        };
    }

    /** The value of the reduction over no elements. */
    public double identity() {
        return switch (this) {
            case SUM -> 0;
            case PROD -> 1;
            case MEAN -> Double.NaN;
            case MAX -> Double.NEGATIVE_INFINITY;
            case MIN -> Double.POSITIVE_INFINITY;
        };
    }
}
