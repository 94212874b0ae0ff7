package dev.kiln.tensor;

import java.util.Arrays;

/** Where a tensor's elements sit in its storage: shape, strides and offset, in elements. */
public record Layout(Shape shape, long[] strides, long offset) {

    public static Layout contiguous(Shape shape) {
        return new Layout(shape, shape.contiguousStrides(), 0);
    }

    /** True when elements are laid out row-major with no gaps (size-1 dimensions may have any stride; an empty tensor always is). */
    public boolean isContiguous() {
        if (shape.numel() == 0) return true;
        long expected = 1;
        for (int i = shape.rank() - 1; i >= 0; i--) {
            int d = shape.dimAt(i);
            if (d != 1 && strides[i] != expected) return false;
            expected *= d;
        }
        return true;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Layout l && shape.equals(l.shape) && Arrays.equals(strides, l.strides) && offset == l.offset;
    }

    @Override
    public int hashCode() { return (shape.hashCode() * 31 + Arrays.hashCode(strides)) * 31 + Long.hashCode(offset); }

    @Override
    public String toString() { return "Layout" + shape + " strides=" + Arrays.toString(strides) + " offset=" + offset; }
}
