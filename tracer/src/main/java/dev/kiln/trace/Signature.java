package dev.kiln.trace;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.util.Arrays;
import java.util.Objects;

/**
 * The guard of one compiled graph: for each argument, the dtype, shape and contiguity
 * of a tensor or the value of a scalar. Checking it allocates nothing, since it runs
 * on every call.
 */
public final class Signature {
    private final Object[] expected;

    private Signature(Object[] expected) {
        this.expected = expected;
    }

    private record TensorGuard(DType dtype, int[] dims, boolean contiguous) {
        boolean matches(Tensor t) {
            if (t.dtype() != dtype || t.rank() != dims.length || t.isContiguous() != contiguous) return false;
            for (int i = 0; i < dims.length; i++) if (t.shape().dimAt(i) != dims[i]) return false;
            return true;
        }

        @Override
        public String toString() { return dtype + Shape.of(dims).toString() + (contiguous ? "" : " (non-contiguous)"); }
    }

    /** The signature of these arguments. */
    public static Signature of(Object[] args) {
        Object[] e = new Object[args.length];
        for (int i = 0; i < args.length; i++) {
            e[i] = args[i] instanceof Tensor t ? new TensorGuard(t.dtype(), t.shape().dims(), t.isContiguous()) : scalarKey(args[i]);
        }
        return new Signature(e);
    }

    /** The guard value of a scalar argument (arrays compared by content). */
    static Object scalarKey(Object v) {
        return switch (v) {
            case int[] a -> new IntArrayKey(a.clone());
            case long[] a -> Arrays.toString(a);
            case double[] a -> Arrays.toString(a);
            case null -> NullKey.NULL;
            default -> v;
        };
    }

    private enum NullKey { NULL }

    private record IntArrayKey(int[] values) {
        @Override
        public boolean equals(Object o) { return o instanceof IntArrayKey k && Arrays.equals(values, k.values); }

        @Override
        public int hashCode() { return Arrays.hashCode(values); }

        @Override
        public String toString() { return Arrays.toString(values); }
    }

    public boolean matches(Object[] args) {
        if (args.length != expected.length) return false;
        for (int i = 0; i < args.length; i++) {
            Object e = expected[i];
            if (e instanceof TensorGuard g) {
                if (!(args[i] instanceof Tensor t) || !g.matches(t)) return false;
            } else if (args[i] instanceof Tensor || !Objects.equals(e, scalarKey(args[i]))) {
                return false;
            }
        }
        return true;
    }

    /** Which guard of this signature {@code args} fail, old versus new, for recompile reports. */
    public String explainMismatch(Object[] args, java.util.List<String> names) {
        if (args.length != expected.length) return "argument count " + expected.length + " vs " + args.length;
        Signature now = of(args);
        for (int i = 0; i < args.length; i++) {
            Object a = expected[i], b = now.expected[i];
            if (!a.toString().equals(b.toString()) || !Objects.equals(a.getClass(), b.getClass())) {
                String name = i < names.size() ? names.get(i) : "argument " + i;
                if (a instanceof TensorGuard ga && b instanceof TensorGuard gb) {
                    if (ga.dtype != gb.dtype) return name + ": dtype " + ga.dtype + " vs " + gb.dtype;
                    if (ga.dims.length != gb.dims.length) return name + ": rank " + ga.dims.length + " vs " + gb.dims.length
                            + " (shape " + Shape.of(ga.dims) + " vs " + Shape.of(gb.dims) + ")";
                    for (int d = 0; d < ga.dims.length; d++) {
                        if (ga.dims[d] != gb.dims[d]) {
                            return name + ": shape " + Shape.of(ga.dims) + " vs " + Shape.of(gb.dims) + " (dimension " + d
                                    + ": " + ga.dims[d] + " vs " + gb.dims[d] + ")";
                        }
                    }
                    return name + ": contiguous " + ga.contiguous + " vs " + gb.contiguous;
                }
                return name + ": " + a + " vs " + b;
            }
        }
        return "no guard differs";
    }

    /** Number of guarded arguments. */
    public int size() { return expected.length; }

    /**
     * The dimensions in which {@code args} differ from this signature when nothing else
     * differs (same arguments, dtypes, ranks, contiguity and scalars), else null.
     */
    boolean[][] differingDims(Object[] args) {
        if (args.length != expected.length) return null;
        boolean[][] out = new boolean[args.length][];
        boolean any = false;
        for (int i = 0; i < args.length; i++) {
            if (expected[i] instanceof TensorGuard g) {
                if (!(args[i] instanceof Tensor t) || t.dtype() != g.dtype || t.rank() != g.dims.length
                        || t.isContiguous() != g.contiguous) {
                    return null;
                }
                out[i] = new boolean[g.dims.length];
                for (int d = 0; d < g.dims.length; d++) {
                    out[i][d] = t.size(d) != g.dims[d];
                    any |= out[i][d];
                }
            } else if (args[i] instanceof Tensor || !Objects.equals(expected[i], scalarKey(args[i]))) {
                return null;
            }
        }
        return any ? out : null;
    }

    @Override
    public String toString() { return Arrays.toString(expected); }
}
