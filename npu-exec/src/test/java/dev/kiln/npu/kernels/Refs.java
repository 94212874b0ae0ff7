package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** Plain helpers for the reduction and normalisation properties: dtype precision, data, line enumeration, comparison. */
final class Refs {
    private Refs() {}

    /** Half the distance from 1 to the next representable value. */
    static double unitRoundoff(DType t) {
        return switch (t) {
            case FLOAT16 -> 0x1p-11;
            case BFLOAT16 -> 0x1p-8;
            case FLOAT32 -> 0x1p-24;
            default -> 0x1p-53;
        };
    }

    /** The smallest positive (subnormal) value of a float dtype. */
    static double tiny(DType t) {
        return switch (t) {
            case FLOAT16 -> 0x1p-24;
            case BFLOAT16 -> 0x1p-133;
            case FLOAT32 -> 0x1p-149;
            default -> Double.MIN_VALUE;
        };
    }

    static double[] rounded(double[] data, DType t) {
        double[] r = new double[data.length];
        for (int i = 0; i < r.length; i++) r[i] = TestTensors.roundTo(t, data[i]);
        return r;
    }

    /** Integers in [lo, hi] (0/1 for bool). */
    static double[] intData(long n, long seed, int lo, int hi, DType t) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] d = new double[Math.toIntExact(n)];
        int low = t.isUnsigned() ? Math.max(lo, 0) : lo;
        for (int i = 0; i < d.length; i++) d[i] = t == DType.BOOL ? r.nextInt(2) : low + r.nextInt(hi - low + 1);
        return d;
    }

    /** Every element read exactly as a long (no kernels involved). */
    static long[] longs(Tensor t) {
        long[] out = new long[Math.toIntExact(t.numel())];
        for (int i = 0; i < out.length; i++) out[i] = Elements.readLong(t.dtype(), t.storage().segment(), t.elementOffset(i));
        return out;
    }

    static long numel(int[] shape) {
        return Shape.of(shape).numel();
    }

    /** A random subset of dimensions (often none or all), some written as negative indices. */
    static int[] randomDims(int rank, SplittableRandom r) {
        List<Integer> dims = new ArrayList<>();
        int mode = r.nextInt(6);
        for (int i = 0; i < rank; i++) {
            boolean take = mode == 0 ? false : mode == 1 || r.nextBoolean();
            if (take) dims.add(r.nextBoolean() ? i : i - rank);
        }
        java.util.Collections.shuffle(dims, new java.util.Random(r.nextLong()));
        return dims.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * Flat row-major indices of the elements of each line along {@code dim}, lines in
     * row-major order of the other dimensions (a 0-d shape has one line of one element).
     */
    static int[][] lines(int[] shape, int dim) {
        if (shape.length == 0) return new int[][] {{0}};
        int n = shape[dim];
        long total = numel(shape);
        int count = n == 0 ? (int) numel(withDim(shape, dim, 1)) : (int) (total / n);
        int[][] out = new int[count][n];
        int inner = 1;
        for (int i = dim + 1; i < shape.length; i++) inner *= shape[i];
        for (int l = 0; l < count; l++) {
            int o = l / Math.max(inner, 1), in = inner == 0 ? 0 : l % inner;
            for (int i = 0; i < n; i++) out[l][i] = (o * n + i) * inner + in;
        }
        return out;
    }

    static int[] withDim(int[] shape, int dim, int size) {
        int[] s = shape.clone();
        if (s.length > 0) s[dim] = size;
        return s;
    }

    /** Normalises a possibly negative dimension index. */
    static int dim(int d, int rank) {
        return d < 0 ? d + Math.max(rank, 1) : d;
    }

    /**
     * Asserts one element: NaN must be NaN; where the expected value rounds to an
     * infinity in {@code t} the actual must be that infinity; else |a - e| <= tol.
     */
    static void assertNear(String what, int index, double expected, double actual, double tol, DType t) {
        double r = TestTensors.roundTo(t, expected);
        boolean ok;
        if (Double.isNaN(expected)) ok = Double.isNaN(actual);
        else if (Double.isInfinite(r)) ok = actual == r;
        else ok = Math.abs(actual - expected) <= tol;
        if (!ok) fail(what + ": element " + index + " is " + actual + ", expected " + expected + " (tolerance " + tol + ")");
    }

    static void assertShape(String what, int[] expected, Tensor actual) {
        assertEquals(Shape.of(expected), actual.shape(), what + ": shape");
    }
}
