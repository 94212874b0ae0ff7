package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Moves runs of elements between tensor storage of any dtype and the working buffers
 * kernels compute in (float32 scratch segments, double[] and long[]), converting as a
 * cast does:
 * <ul>
 * <li>to bool: non-zero (NaN is non-zero, so true);
 * <li>floating to integers: toward zero, saturating at the target's range, NaN to 0
 *     (Java's conversion; PyTorch leaves out-of-range values undefined);
 * <li>integer to a narrower integer: keeps the low bits (wraps), as PyTorch; integers load
 *     sign- or zero-extended, uint64 as its bits ({@link Elements#readLong});
 * <li>to float16/bfloat16: round to nearest even via float32 (exact for every source,
 *     since float32 has more than twice their precision plus two bits).
 * </ul>
 * Scratch segments are heap memory, so they are accessed with unaligned layouts.
 */
final class Staging {
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED;
    private static final ValueLayout.OfByte I8 = ValueLayout.JAVA_BYTE;

    private Staging() {}

    /** Scratch for {@code floats} float32 values: native, as the Vector API reads it ({@link VectorMemory}). */
    static MemorySegment floatScratch(int floats) {
        return VectorMemory.floats(floats);
    }

    // ---------------------------------------------------------------- loads

    /** n elements of {@code src} from element {@code at}, {@code stride} apart, as float32 into {@code dst}. */
    static void toFloats(DType t, MemorySegment src, long at, long stride, int n, MemorySegment dst) {
        switch (t) {
            case FLOAT32 -> {
                if (stride == 1) MemorySegment.copy(src, F32, at * 4, dst, F32, 0, n);
                else for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, src.getAtIndex(F32, at + i * stride));
            }
            case FLOAT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, Float.float16ToFloat(src.getAtIndex(I16, at + i * stride))); }
            case BFLOAT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, Elements.bf16ToFloat(src.getAtIndex(I16, at + i * stride))); }
            case FLOAT64 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, (float) src.getAtIndex(F64, at + i * stride)); }
            case INT32 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, (float) src.getAtIndex(I32, at + i * stride)); }
            case INT64 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, (float) src.getAtIndex(I64, at + i * stride)); }
            case INT8 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, src.get(I8, at + i * stride)); }
            case UINT8 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, src.get(I8, at + i * stride) & 0xff); }
            case INT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, src.getAtIndex(I16, at + i * stride)); }
            case UINT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, src.getAtIndex(I16, at + i * stride) & 0xffff); }
            case UINT32 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, src.getAtIndex(I32, at + i * stride) & 0xffff_ffffL); }
            case UINT64 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, Elements.toFloat(t, src.getAtIndex(I64, at + i * stride))); }
            case BOOL -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, i, src.get(I8, at + i * stride) != 0 ? 1f : 0f); }
        }
    }

    static void toDoubles(DType t, MemorySegment src, long at, long stride, int n, double[] dst) {
        switch (t) {
            case FLOAT64 -> {
                if (stride == 1) MemorySegment.copy(src, F64, at * 8, dst, 0, n);
                else for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(F64, at + i * stride);
            }
            case FLOAT32 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(F32, at + i * stride); }
            case FLOAT16 -> { for (int i = 0; i < n; i++) dst[i] = Float.float16ToFloat(src.getAtIndex(I16, at + i * stride)); }
            case BFLOAT16 -> { for (int i = 0; i < n; i++) dst[i] = Elements.bf16ToFloat(src.getAtIndex(I16, at + i * stride)); }
            case INT32 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I32, at + i * stride); }
            case INT64 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I64, at + i * stride); }
            case INT8 -> { for (int i = 0; i < n; i++) dst[i] = src.get(I8, at + i * stride); }
            case UINT8 -> { for (int i = 0; i < n; i++) dst[i] = src.get(I8, at + i * stride) & 0xff; }
            case INT16 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I16, at + i * stride); }
            case UINT16 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I16, at + i * stride) & 0xffff; }
            case UINT32 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I32, at + i * stride) & 0xffff_ffffL; }
            case UINT64 -> { for (int i = 0; i < n; i++) dst[i] = Elements.toDouble(t, src.getAtIndex(I64, at + i * stride)); }
            case BOOL -> { for (int i = 0; i < n; i++) dst[i] = src.get(I8, at + i * stride) != 0 ? 1 : 0; }
        }
    }

    static void toLongs(DType t, MemorySegment src, long at, long stride, int n, long[] dst) {
        switch (t) {
            case INT64, UINT64 -> {
                if (stride == 1) MemorySegment.copy(src, I64, at * 8, dst, 0, n);
                else for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I64, at + i * stride);
            }
            case INT32 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I32, at + i * stride); }
            case INT8 -> { for (int i = 0; i < n; i++) dst[i] = src.get(I8, at + i * stride); }
            case UINT8 -> { for (int i = 0; i < n; i++) dst[i] = src.get(I8, at + i * stride) & 0xff; }
            case INT16 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I16, at + i * stride); }
            case UINT16 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I16, at + i * stride) & 0xffff; }
            case UINT32 -> { for (int i = 0; i < n; i++) dst[i] = src.getAtIndex(I32, at + i * stride) & 0xffff_ffffL; }
            case BOOL -> { for (int i = 0; i < n; i++) dst[i] = src.get(I8, at + i * stride) != 0 ? 1 : 0; }
            case FLOAT32 -> { for (int i = 0; i < n; i++) dst[i] = (long) src.getAtIndex(F32, at + i * stride); }
            case FLOAT16 -> { for (int i = 0; i < n; i++) dst[i] = (long) Float.float16ToFloat(src.getAtIndex(I16, at + i * stride)); }
            case BFLOAT16 -> { for (int i = 0; i < n; i++) dst[i] = (long) Elements.bf16ToFloat(src.getAtIndex(I16, at + i * stride)); }
            case FLOAT64 -> { for (int i = 0; i < n; i++) dst[i] = (long) src.getAtIndex(F64, at + i * stride); }
        }
    }

    // ---------------------------------------------------------------- stores (contiguous destination)

    /** n float32 values from {@code src} into {@code dst} of dtype t, from element {@code at}. */
    static void storeFloats(MemorySegment src, int n, DType t, MemorySegment dst, long at) {
        switch (t) {
            case FLOAT32 -> MemorySegment.copy(src, F32, 0, dst, F32, at * 4, n);
            case FLOAT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, at + i, Float.floatToFloat16(src.getAtIndex(F32, i))); }
            case BFLOAT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, at + i, Elements.floatToBf16(src.getAtIndex(F32, i))); }
            case FLOAT64 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F64, at + i, src.getAtIndex(F32, i)); }
            case INT32 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I32, at + i, (int) src.getAtIndex(F32, i)); }
            case INT64 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I64, at + i, (long) src.getAtIndex(F32, i)); }
            case INT8, UINT8 -> { for (int i = 0; i < n; i++) dst.set(I8, at + i, (byte) Elements.fromDouble(t, src.getAtIndex(F32, i))); }
            case INT16, UINT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, at + i, (short) Elements.fromDouble(t, src.getAtIndex(F32, i))); }
            case UINT32 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I32, at + i, (int) Elements.fromDouble(t, src.getAtIndex(F32, i))); }
            case UINT64 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I64, at + i, Elements.fromDouble(t, src.getAtIndex(F32, i))); }
            case BOOL -> { for (int i = 0; i < n; i++) dst.set(I8, at + i, src.getAtIndex(F32, i) != 0 ? (byte) 1 : 0); }
        }
    }

    static void storeDoubles(double[] src, int n, DType t, MemorySegment dst, long at) {
        switch (t) {
            case FLOAT64 -> MemorySegment.copy(src, 0, dst, F64, at * 8, n);
            case FLOAT32 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, at + i, (float) src[i]); }
            case FLOAT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, at + i, Float.floatToFloat16((float) src[i])); }
            case BFLOAT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, at + i, Elements.floatToBf16((float) src[i])); }
            case INT32 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I32, at + i, (int) src[i]); }
            case INT64 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I64, at + i, (long) src[i]); }
            case INT8, UINT8 -> { for (int i = 0; i < n; i++) dst.set(I8, at + i, (byte) Elements.fromDouble(t, src[i])); }
            case INT16, UINT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, at + i, (short) Elements.fromDouble(t, src[i])); }
            case UINT32 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I32, at + i, (int) Elements.fromDouble(t, src[i])); }
            case UINT64 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I64, at + i, Elements.fromDouble(t, src[i])); }
            case BOOL -> { for (int i = 0; i < n; i++) dst.set(I8, at + i, src[i] != 0 ? (byte) 1 : 0); }
        }
    }

    static void storeLongs(long[] src, int n, DType t, MemorySegment dst, long at) {
        switch (t) {
            case INT64, UINT64 -> MemorySegment.copy(src, 0, dst, I64, at * 8, n);
            case INT32, UINT32 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I32, at + i, (int) src[i]); }
            case INT8, UINT8 -> { for (int i = 0; i < n; i++) dst.set(I8, at + i, (byte) src[i]); }
            case INT16, UINT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, at + i, (short) src[i]); }
            case BOOL -> { for (int i = 0; i < n; i++) dst.set(I8, at + i, src[i] != 0 ? (byte) 1 : 0); }
            case FLOAT64 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F64, at + i, (double) src[i]); }
            case FLOAT32 -> { for (int i = 0; i < n; i++) dst.setAtIndex(F32, at + i, (float) src[i]); }
            case FLOAT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, at + i, Float.floatToFloat16((float) src[i])); }
            case BFLOAT16 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, at + i, Elements.floatToBf16((float) src[i])); }
        }
    }

    // ---------------------------------------------------------------- raw copies (same dtype)

    /** Copies n elements of {@code bytes} bytes each, {@code stride} apart from element {@code at}, to contiguous {@code dst} at element {@code to}. */
    static void copyRaw(int bytes, MemorySegment src, long at, long stride, int n, MemorySegment dst, long to) {
        if (stride == 1) {
            MemorySegment.copy(src, at * bytes, dst, to * bytes, (long) n * bytes);
            return;
        }
        switch (bytes) {
            case 1 -> { for (int i = 0; i < n; i++) dst.set(I8, to + i, src.get(I8, at + i * stride)); }
            case 2 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I16, to + i, src.getAtIndex(I16, at + i * stride)); }
            case 4 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I32, to + i, src.getAtIndex(I32, at + i * stride)); }
            case 8 -> { for (int i = 0; i < n; i++) dst.setAtIndex(I64, to + i, src.getAtIndex(I64, at + i * stride)); }
            default -> throw new IllegalArgumentException("element size " + bytes);
        }
    }
}
