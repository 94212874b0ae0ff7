package dev.kiln.tensor;

import java.util.Arrays;

/** An immutable tensor shape of rank 0 to 8. */
public final class Shape {
    public static final int MAX_RANK = 8;
    public static final Shape SCALAR = new Shape(new int[0]);

    private final int[] dims;
    private final long numel;

    private Shape(int[] dims) {
        if (dims.length > MAX_RANK) {
            throw new KilnShapeException("shape " + Arrays.toString(dims) + " has rank " + dims.length
                    + ", above the maximum " + MAX_RANK);
        }
        long n = 1;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] < 0) {
                throw new KilnShapeException("shape " + Arrays.toString(dims) + ": dimension " + i
                        + " is negative (" + dims[i] + ")");
            }
            n = Math.multiplyExact(n, dims[i]);
        }
        this.dims = dims;
        this.numel = n;
    }

    public static Shape of(int... dims) {
        return dims.length == 0 ? SCALAR : new Shape(dims.clone());
    }

    public static Shape of(long... dims) {
        int[] d = new int[dims.length];
        for (int i = 0; i < dims.length; i++) d[i] = Math.toIntExact(dims[i]);
        return new Shape(d);
    }

    public int rank() { return dims.length; }
    public long numel() { return numel; }
    public int[] dims() { return dims.clone(); }

    /** Size of a dimension; negative indices count from the end. */
    public int dim(int i) { return dims[normalizeDim(i, "dim")]; }

    /** Size of dimension {@code i} in [0, rank), without normalisation: for hot loops. */
    public int dimAt(int i) { return dims[i]; }

    /** Resolves a possibly negative dimension index, naming the op on error. */
    public int normalizeDim(int d, String op) {
        return normalizeDim(d, dims.length, op, this);
    }

    public static int normalizeDim(int d, int rank, String op, Object shapeForMessage) {
        int r = Math.max(rank, 1);
        if (d < -r || d >= r) {
            throw new KilnShapeException(op + ": dimension " + d + " is out of range for shape "
                    + shapeForMessage + " (expected in [" + (-r) + ", " + (r - 1) + "])");
        }
        return d < 0 ? d + r : d;
    }

    /** Row-major contiguous strides, in elements. */
    public long[] contiguousStrides() {
        long[] s = new long[dims.length];
        long acc = 1;
        for (int i = dims.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= Math.max(dims[i], 1);
        }
        return s;
    }

    public Shape with(int dim, int size) {
        int[] d = dims.clone();
        d[normalizeDim(dim, "with")] = size;
        return new Shape(d);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Shape s && Arrays.equals(dims, s.dims);
    }

    @Override
    public int hashCode() { return Arrays.hashCode(dims); }

    /** Formats compactly for messages: {@code [2,3]}. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < dims.length; i++) {
            if (i > 0) sb.append(',');
            sb.append(dims[i]);
        }
        return sb.append(']').toString();
    }

    /** Whether this shape broadcasts to {@code target} unchanged (NumPy rules, aligned at the last dimension). */
    public boolean broadcastsTo(Shape target) {
        int lead = target.rank() - rank();
        if (lead < 0) return false;
        for (int d = 0; d < rank(); d++) {
            if (dims[d] != 1 && dims[d] != target.dims[lead + d]) return false;
        }
        return true;
    }

    /** NumPy broadcasting of two shapes; {@code op} names the caller in the error. */
    public static Shape broadcast(String op, Shape a, Shape b) {
        int rank = Math.max(a.rank(), b.rank());
        int[] out = new int[rank];
        for (int i = 1; i <= rank; i++) {
            int da = i <= a.rank() ? a.dims[a.rank() - i] : 1;
            int db = i <= b.rank() ? b.dims[b.rank() - i] : 1;
            if (da == db || db == 1) out[rank - i] = da;
            else if (da == 1) out[rank - i] = db;
            else {
                throw new KilnShapeException(op + ": shapes " + a + " and " + b
                        + " do not broadcast: dimension -" + i + " is " + da + " vs " + db);
            }
        }
        return new Shape(out);
    }

    public static Shape broadcast(String op, Shape... shapes) {
        Shape s = shapes[0];
        for (int i = 1; i < shapes.length; i++) s = broadcast(op, s, shapes[i]);
        return s;
    }
}
