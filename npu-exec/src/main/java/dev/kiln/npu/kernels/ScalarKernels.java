package dev.kiln.npu.kernels;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;

/**
 * Elementwise loops over Java arrays: float64 in double (with the registry's reference
 * functions, which are double-precision already) and integer/bool arithmetic in long,
 * wrapping on overflow like Java and PyTorch integer tensors.
 */
final class ScalarKernels {
    private ScalarKernels() {}

    /** Names the op, the element and the shapes when an integer kernel meets bad input. */
    record ElementError(String op, Shape result, String operands) {
        KilnException at(long flatIndex, String problem) {
            int[] d = result.dims();
            long[] idx = new long[d.length];
            for (int i = d.length - 1; i >= 0; i--) {
                idx[i] = flatIndex % d[i];
                flatIndex /= d[i];
            }
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < idx.length; i++) sb.append(i > 0 ? "," : "").append(idx[i]);
            return new KilnException(op + ": " + problem + " at index " + sb.append(']') + " of the result "
                    + result + " (" + operands + ")");
        }
    }

    // ---------------------------------------------------------------- double

    static void unary(UnaryFn fn, double[] a, double[] o, int n) {
        for (int i = 0; i < n; i++) o[i] = fn.apply(a[i]);
    }

    static void binary(BinaryFn fn, double[] a, double[] b, double[] o, int n) {
        switch (fn) {
            case ADD -> { for (int i = 0; i < n; i++) o[i] = a[i] + b[i]; }
            case SUB -> { for (int i = 0; i < n; i++) o[i] = a[i] - b[i]; }
            case MUL -> { for (int i = 0; i < n; i++) o[i] = a[i] * b[i]; }
            case DIV -> { for (int i = 0; i < n; i++) o[i] = a[i] / b[i]; }
            default -> { for (int i = 0; i < n; i++) o[i] = fn.apply(a[i], b[i]); }
        }
    }

    /** min(max(x, lo), hi) with Math's NaN propagation. */
    static void clamp(double lo, double hi, double[] a, double[] o, int n) {
        for (int i = 0; i < n; i++) o[i] = Math.min(Math.max(a[i], lo), hi);
    }

    static void where(double[] c, double[] x, double[] y, double[] o, int n) {
        for (int i = 0; i < n; i++) o[i] = c[i] != 0 ? x[i] : y[i];
    }

    // ---------------------------------------------------------------- long

    /** {@code unsigned}: the values are uint64 bits, which abs and relu leave as they are. */
    static void unary(UnaryFn fn, long[] a, long[] o, int n, boolean unsigned) {
        if (unsigned && (fn == UnaryFn.ABS || fn == UnaryFn.RELU)) {
            identity(a, o, n);
            return;
        }
        switch (fn) {
            case NEG -> { for (int i = 0; i < n; i++) o[i] = -a[i]; }
            case ABS -> { for (int i = 0; i < n; i++) o[i] = Math.abs(a[i]); }
            case RELU -> { for (int i = 0; i < n; i++) o[i] = Math.max(a[i], 0); }
            case LOGICAL_NOT -> { for (int i = 0; i < n; i++) o[i] = a[i] == 0 ? 1 : 0; }
            case BITWISE_NOT -> { for (int i = 0; i < n; i++) o[i] = ~a[i]; }
            default -> throw new IllegalArgumentException(fn.opName() + " computes in floating point, not in integers");
        }
    }

    /**
     * {@code unsigned}: the values are uint64 bits, compared, divided, raised to powers and
     * shifted right unsigned (sums, differences, products and the other bitwise ops give the
     * same bits either way).
     */
    static void binary(BinaryFn fn, long[] a, long[] b, long[] o, int n, long outIndex, ElementError error, boolean unsigned) {
        if (unsigned && binaryUnsigned(fn, a, b, o, n, outIndex, error)) return;
        switch (fn) {
            case ADD -> { for (int i = 0; i < n; i++) o[i] = a[i] + b[i]; }
            case SUB -> { for (int i = 0; i < n; i++) o[i] = a[i] - b[i]; }
            case MUL -> { for (int i = 0; i < n; i++) o[i] = a[i] * b[i]; }
            case MINIMUM -> { for (int i = 0; i < n; i++) o[i] = Math.min(a[i], b[i]); }
            case MAXIMUM -> { for (int i = 0; i < n; i++) o[i] = Math.max(a[i], b[i]); }
            case TRUNC_DIV, FLOOR_DIV -> {
                for (int i = 0; i < n; i++) {
                    if (b[i] == 0) throw error.at(outIndex + i, "integer division by zero");
                    o[i] = fn == BinaryFn.TRUNC_DIV ? a[i] / b[i] : Math.floorDiv(a[i], b[i]);
                }
            }
            case POW -> {
                for (int i = 0; i < n; i++) {
                    if (b[i] < 0 && a[i] != 1 && a[i] != -1) {
                        throw error.at(outIndex + i, "integers cannot be raised to negative integer powers (" + a[i] + " ** " + b[i] + ")");
                    }
                    o[i] = BinaryFn.POW.applyLong(a[i], b[i]);
                }
            }
            case EQ -> { for (int i = 0; i < n; i++) o[i] = a[i] == b[i] ? 1 : 0; }
            case NE -> { for (int i = 0; i < n; i++) o[i] = a[i] != b[i] ? 1 : 0; }
            case LT -> { for (int i = 0; i < n; i++) o[i] = a[i] < b[i] ? 1 : 0; }
            case LE -> { for (int i = 0; i < n; i++) o[i] = a[i] <= b[i] ? 1 : 0; }
            case GT -> { for (int i = 0; i < n; i++) o[i] = a[i] > b[i] ? 1 : 0; }
            case GE -> { for (int i = 0; i < n; i++) o[i] = a[i] >= b[i] ? 1 : 0; }
            case LOGICAL_AND -> { for (int i = 0; i < n; i++) o[i] = a[i] != 0 && b[i] != 0 ? 1 : 0; }
            case LOGICAL_OR -> { for (int i = 0; i < n; i++) o[i] = a[i] != 0 || b[i] != 0 ? 1 : 0; }
            case LOGICAL_XOR -> { for (int i = 0; i < n; i++) o[i] = (a[i] != 0) != (b[i] != 0) ? 1 : 0; }
            case BITWISE_AND -> { for (int i = 0; i < n; i++) o[i] = a[i] & b[i]; }
            case BITWISE_OR -> { for (int i = 0; i < n; i++) o[i] = a[i] | b[i]; }
            case BITWISE_XOR -> { for (int i = 0; i < n; i++) o[i] = a[i] ^ b[i]; }
            case LEFT_SHIFT, RIGHT_SHIFT -> { for (int i = 0; i < n; i++) o[i] = fn.applyLong(a[i], b[i]); }
            case DIV -> throw new IllegalArgumentException("div computes in floating point, not in integers");
        }
    }

    /** The ops whose uint64 form differs from the signed one; false for the rest. */
    private static boolean binaryUnsigned(BinaryFn fn, long[] a, long[] b, long[] o, int n, long outIndex, ElementError error) {
        switch (fn) {
            case MINIMUM -> { for (int i = 0; i < n; i++) o[i] = Long.compareUnsigned(a[i], b[i]) <= 0 ? a[i] : b[i]; }
            case MAXIMUM -> { for (int i = 0; i < n; i++) o[i] = Long.compareUnsigned(a[i], b[i]) >= 0 ? a[i] : b[i]; }
            case TRUNC_DIV, FLOOR_DIV -> {
                for (int i = 0; i < n; i++) {
                    if (b[i] == 0) throw error.at(outIndex + i, "integer division by zero");
                    o[i] = Long.divideUnsigned(a[i], b[i]);
                }
            }
            case POW -> {
                for (int i = 0; i < n; i++) {
                    long r = 1, base = a[i];
                    for (long e = b[i]; e != 0; e >>>= 1) {
                        if ((e & 1) != 0) r *= base;
                        base *= base;
                    }
                    o[i] = r;
                }
            }
            case LT -> { for (int i = 0; i < n; i++) o[i] = Long.compareUnsigned(a[i], b[i]) < 0 ? 1 : 0; }
            case LE -> { for (int i = 0; i < n; i++) o[i] = Long.compareUnsigned(a[i], b[i]) <= 0 ? 1 : 0; }
            case GT -> { for (int i = 0; i < n; i++) o[i] = Long.compareUnsigned(a[i], b[i]) > 0 ? 1 : 0; }
            case GE -> { for (int i = 0; i < n; i++) o[i] = Long.compareUnsigned(a[i], b[i]) >= 0 ? 1 : 0; }
            // Logical: the bits shift in zeros.
            case RIGHT_SHIFT -> { for (int i = 0; i < n; i++) o[i] = b[i] < 0 || b[i] >= Long.SIZE ? 0 : a[i] >>> b[i]; }
            default -> { return false; }
        }
        return true;
    }

    static void clamp(long lo, long hi, long[] a, long[] o, int n) {
        for (int i = 0; i < n; i++) o[i] = Math.min(Math.max(a[i], lo), hi);
    }

    /** {@link #clamp(long, long, long[], long[], int)} of uint64 bits. */
    static void clampUnsigned(long lo, long hi, long[] a, long[] o, int n) {
        for (int i = 0; i < n; i++) {
            long v = Long.compareUnsigned(a[i], lo) < 0 ? lo : a[i];
            o[i] = Long.compareUnsigned(v, hi) > 0 ? hi : v;
        }
    }

    static void where(long[] c, long[] x, long[] y, long[] o, int n) {
        for (int i = 0; i < n; i++) o[i] = c[i] != 0 ? x[i] : y[i];
    }

    static void identity(double[] a, double[] o, int n) { System.arraycopy(a, 0, o, 0, n); }

    static void identity(long[] a, long[] o, int n) { System.arraycopy(a, 0, o, 0, n); }
}
