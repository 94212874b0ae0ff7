package dev.kiln.npu.kernels.serving;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Element addressing of a rank-3 or rank-4 tensor whose last dimension is a head vector,
 * plus row transfers to and from float32 scratch. {@code fast} marks float32 rows with
 * unit stride, which kernels read straight from the segment with vector loads.
 */
record CacheView(MemorySegment segment, DType dtype, long offset, long[] strides, boolean fast) {

    static CacheView of(Tensor t) {
        long[] s = t.layout().strides();
        return new CacheView(t.storage().segment(), t.dtype(), t.layout().offset(), s,
                t.dtype() == DType.FLOAT32 && s[s.length - 1] == 1);
    }

    long rowStride() { return strides[strides.length - 1]; }

    /** Element offset of row {@code [i, j]} of a rank-3 tensor. */
    long row(long i, long j) { return offset + i * strides[0] + j * strides[1]; }

    /** Element offset of row {@code [block, slot, head]} of a rank-4 cache. */
    long row(long block, long slot, long head) { return offset + block * strides[0] + slot * strides[1] + head * strides[2]; }

    /** Reads {@code n} elements from element offset {@code at} into {@code dst[dstAt..]} as float32. */
    void load(long at, int n, float[] dst, int dstAt) {
        long stride = rowStride();
        if (dtype == DType.FLOAT32 && stride == 1) {
            MemorySegment.copy(segment, ValueLayout.JAVA_FLOAT, at * Float.BYTES, dst, dstAt, n);
            return;
        }
        for (int i = 0; i < n; i++) dst[dstAt + i] = (float) Elements.read(dtype, segment, at + i * stride);
    }

    /** As {@link #load(long, int, float[], int)} into float32 elements of {@code dst} from byte {@code dstByte}. */
    void load(long at, int n, MemorySegment dst, long dstByte) {
        long stride = rowStride();
        if (dtype == DType.FLOAT32 && stride == 1) {
            MemorySegment.copy(segment, ValueLayout.JAVA_FLOAT, at * Float.BYTES, dst, ValueLayout.JAVA_FLOAT, dstByte, n);
            return;
        }
        for (int i = 0; i < n; i++) dst.set(ValueLayout.JAVA_FLOAT, dstByte + (long) i * Float.BYTES, (float) Elements.read(dtype, segment, at + i * stride));
    }

    /** Writes {@code n} floats to element offset {@code at}, rounding to this dtype. */
    void store(long at, int n, float[] src, int srcAt) {
        long stride = rowStride();
        if (dtype == DType.FLOAT32 && stride == 1) {
            MemorySegment.copy(src, srcAt, segment, ValueLayout.JAVA_FLOAT, at * Float.BYTES, n);
            return;
        }
        for (int i = 0; i < n; i++) Elements.write(dtype, segment, at + i * stride, src[srcAt + i]);
    }

    /** Copies one row of {@code n} elements from {@code src} at {@code from} to this view at {@code to}. */
    void copyRow(CacheView src, long from, long to, int n) {
        if (src.dtype == dtype && src.rowStride() == 1 && rowStride() == 1) {
            long bytes = dtype.byteSize();
            MemorySegment.copy(src.segment, from * bytes, segment, to * bytes, n * bytes);
            return;
        }
        long ss = src.rowStride(), ds = rowStride();
        for (int i = 0; i < n; i++) Elements.write(dtype, segment, to + i * ds, Elements.read(src.dtype, src.segment, from + i * ss));
    }
}
