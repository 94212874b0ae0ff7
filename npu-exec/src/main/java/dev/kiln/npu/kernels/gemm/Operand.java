package dev.kiln.npu.kernels.gemm;

import dev.kiln.tensor.DType;

import java.lang.foreign.MemorySegment;

/**
 * One matrix operand as a strided view: element (r, c) of batch entry i sits at
 * element index {@code offsets[i] + r * rowStride + c * colStride} of {@code segment}.
 * For the left operand rows are M and columns K; for the right, rows are K and columns N.
 */
public record Operand(MemorySegment segment, DType dtype, long[] offsets, long rowStride, long colStride) {

    /** Index of element (row, col) of batch entry {@code batch}. */
    long index(int batch, long row, long col) {
        return offsets[batch] + row * rowStride + col * colStride;
    }
}
