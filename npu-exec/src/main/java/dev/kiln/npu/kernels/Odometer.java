package dev.kiln.npu.kernels;

/**
 * Walks the multi-indices of a shape in row-major order, keeping the storage offsets
 * of two layouts (typically an input and an output) in step. Advancing costs one add
 * per layout in the common case, instead of the division chain a flat-index lookup
 * needs, so kernels use it for the outer dimensions around their inner loops.
 *
 * <p>A cursor: mutable and confined to the thread that made it.
 */
public final class Odometer {
    private final int[] sizes;
    private final long[] aStrides, bStrides;
    private final long aBase, bBase;
    private final int[] index;
    private long a, b;

    /** Walks {@code sizes} (no zero sizes) with offsets {@code aBase + index . aStrides} and likewise for b. */
    public Odometer(int[] sizes, long[] aStrides, long aBase, long[] bStrides, long bBase) {
        this.sizes = sizes;
        this.aStrides = aStrides;
        this.bStrides = bStrides;
        this.aBase = aBase;
        this.bBase = bBase;
        this.index = new int[sizes.length];
        this.a = aBase;
        this.b = bBase;
    }

    /** Moves to row-major position {@code flat}; returns this. */
    public Odometer seek(long flat) {
        long offA = aBase, offB = bBase;
        for (int i = sizes.length - 1; i >= 0; i--) {
            int c = (int) (flat % sizes[i]);
            flat /= sizes[i];
            index[i] = c;
            offA += c * aStrides[i];
            offB += c * bStrides[i];
        }
        a = offA;
        b = offB;
        return this;
    }

    /** Advances to the next position (wrapping to the first after the last). */
    public void next() {
        for (int i = sizes.length - 1; i >= 0; i--) {
            a += aStrides[i];
            b += bStrides[i];
            if (++index[i] < sizes[i]) return;
            a -= aStrides[i] * sizes[i];
            b -= bStrides[i] * sizes[i];
            index[i] = 0;
        }
    }

    /** Offset in the first layout. */
    public long a() { return a; }

    /** Offset in the second layout. */
    public long b() { return b; }
}
