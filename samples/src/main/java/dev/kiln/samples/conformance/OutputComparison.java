package dev.kiln.samples.conformance;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Tensor;

import java.util.Locale;

/**
 * The case format's comparison rules: same shape, same dtype, and element by element
 * {@code |actual - expected| <= atol + rtol * |expected|} for floating point (NaN matches
 * NaN, infinities must match exactly), exact equality for integers and bools.
 *
 * <p>Elements are read straight from storage, without running any kernel, so the
 * comparison does not depend on the code under test.
 */
public final class OutputComparison {
    private OutputComparison() {}

    /** Tolerances for one expected dtype. */
    public record Tolerance(double rtol, double atol) {
        public static Tolerance of(DType dtype) {
            return switch (dtype) {
                case FLOAT32, FLOAT64 -> new Tolerance(1e-3, 1e-5);
                case FLOAT16, BFLOAT16 -> new Tolerance(1e-2, 1e-3);
                case BOOL, INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64 -> new Tolerance(0, 0);
            };
        }
    }

    /** Null when {@code actual} matches {@code expected}, else what differs (shape, dtype, or the worst element). */
    public static String mismatch(Tensor actual, Tensor expected) {
        if (!actual.shape().equals(expected.shape())) return "shape " + actual.shape() + ", expected " + expected.shape();
        if (actual.dtype() != expected.dtype()) return "dtype " + actual.dtype() + ", expected " + expected.dtype();
        return expected.dtype().isFloatingPoint() ? floatMismatch(actual, expected) : exactMismatch(actual, expected);
    }

    private static String floatMismatch(Tensor actual, Tensor expected) {
        Tolerance tol = Tolerance.of(expected.dtype());
        long n = expected.numel(), bad = 0, worst = -1, firstNonFinite = -1;
        double worstErr = -1;
        for (long i = 0; i < n; i++) {
            double a = read(actual, i), e = read(expected, i);
            if (Double.isNaN(a) || Double.isNaN(e) || Double.isInfinite(a) || Double.isInfinite(e)) {
                boolean same = Double.isNaN(a) && Double.isNaN(e) || a == e;
                if (!same) {
                    bad++;
                    if (firstNonFinite < 0) firstNonFinite = i;
                }
                continue;
            }
            double err = Math.abs(a - e);
            if (err > tol.atol() + tol.rtol() * Math.abs(e)) {
                bad++;
                if (err > worstErr) {
                    worstErr = err;
                    worst = i;
                }
            }
        }
        if (bad == 0) return null;
        String outOf = "; " + bad + " of " + n + " elements outside rtol " + scientific(tol.rtol()) + " atol " + scientific(tol.atol());
        if (firstNonFinite >= 0) {
            return "got " + format(actual, firstNonFinite) + " at " + index(expected, firstNonFinite) + ", expected "
                    + format(expected, firstNonFinite) + outOf;
        }
        return "max abs err " + scientific(worstErr) + " at " + index(expected, worst) + " (got " + format(actual, worst)
                + ", expected " + format(expected, worst) + ")" + outOf;
    }

    private static String exactMismatch(Tensor actual, Tensor expected) {
        long n = expected.numel(), bad = 0, first = -1;
        for (long i = 0; i < n; i++) {
            if (readLong(actual, i) != readLong(expected, i)) {
                bad++;
                if (first < 0) first = i;
            }
        }
        if (bad == 0) return null;
        return "got " + format(actual, first) + " at " + index(expected, first) + ", expected " + format(expected, first)
                + "; " + bad + " of " + n + " elements differ";
    }

    private static double read(Tensor t, long i) {
        return Elements.read(t.dtype(), t.storage().segment(), t.elementOffset(i));
    }

    private static long readLong(Tensor t, long i) {
        return Elements.readLong(t.dtype(), t.storage().segment(), t.elementOffset(i));
    }

    private static String format(Tensor t, long i) {
        return switch (t.dtype()) {
            case BOOL -> readLong(t, i) != 0 ? "true" : "false";
            case UINT64 -> Long.toUnsignedString(readLong(t, i));
            case INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64 -> Long.toString(readLong(t, i));
            case FLOAT64 -> Double.toString(read(t, i));
            default -> Float.toString((float) read(t, i));
        };
    }

    /** The multi-index of a flat row-major index, as {@code [1,4]}. */
    static String index(Tensor t, long flat) {
        int[] dims = t.shape().dims();
        long[] idx = new long[dims.length];
        for (int d = dims.length - 1; d >= 0; d--) {
            idx[d] = flat % dims[d];
            flat /= dims[d];
        }
        StringBuilder sb = new StringBuilder("[");
        for (int d = 0; d < idx.length; d++) sb.append(d > 0 ? "," : "").append(idx[d]);
        return sb.append(']').toString();
    }

    /** Two significant digits with a short exponent: {@code 3.1e-2}. */
    static String scientific(double v) {
        if (v == 0 || !Double.isFinite(v)) return Double.toString(v);
        int exp = (int) Math.floor(Math.log10(Math.abs(v)));
        String mantissa = String.format(Locale.ROOT, "%.1f", v / Math.pow(10, exp));
        if (mantissa.startsWith("10") || mantissa.startsWith("-10")) {
            exp++;
            mantissa = String.format(Locale.ROOT, "%.1f", v / Math.pow(10, exp));
        }
        return mantissa + "e" + exp;
    }
}
