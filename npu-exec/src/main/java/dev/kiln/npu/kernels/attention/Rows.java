package dev.kiln.npu.kernels.attention;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Moves strided rows between storage and heap arrays, converting to and from the
 * compute type. The attention kernels pack q, k and v slices this way, so the hot
 * loops see one layout whatever the inputs' dtypes and strides; the dtype switch
 * sits outside each loop.
 */
final class Rows {
    private Rows() {}

    /** {@code dst[pos + i * step] = src[offset + i * stride] * multiplier} for i in [0, n), in float. */
    static void loadFloats(DType type, MemorySegment src, long offset, long stride, int n,
                           float[] dst, int pos, int step, float multiplier) {
        switch (type) {
            case FLOAT32 -> {
                for (int i = 0; i < n; i++) dst[pos + i * step] = src.getAtIndex(ValueLayout.JAVA_FLOAT, offset + i * stride) * multiplier;
            }
            case FLOAT16 -> {
                for (int i = 0; i < n; i++) {
                    dst[pos + i * step] = Float.float16ToFloat(src.getAtIndex(ValueLayout.JAVA_SHORT, offset + i * stride)) * multiplier;
                }
            }
            case BFLOAT16 -> {
                for (int i = 0; i < n; i++) {
                    dst[pos + i * step] = Elements.bf16ToFloat(src.getAtIndex(ValueLayout.JAVA_SHORT, offset + i * stride)) * multiplier;
                }
            }
            default -> throw new IllegalArgumentException("no float32 compute path for " + type);
        }
    }

    /** {@code dst[pos + i * step] = src[offset + i * stride] * multiplier} for float64 storage. */
    static void loadDoubles(MemorySegment src, long offset, long stride, int n, double[] dst, int pos, int step, double multiplier) {
        for (int i = 0; i < n; i++) dst[pos + i * step] = src.getAtIndex(ValueLayout.JAVA_DOUBLE, offset + i * stride) * multiplier;
    }

    /**
     * A row of an attention mask as additive bias: a bool mask gives 0 where a key takes
     * part and -inf where it does not; a float mask gives its values.
     */
    static void loadBias(DType type, MemorySegment src, long offset, long stride, int n, float[] dst, int pos) {
        if (type == DType.BOOL) {
            for (int i = 0; i < n; i++) dst[pos + i] = src.get(ValueLayout.JAVA_BYTE, offset + i * stride) != 0 ? 0f : Float.NEGATIVE_INFINITY;
        } else {
            loadFloats(type, src, offset, stride, n, dst, pos, 1, 1f);
        }
    }

    static void loadBias(DType type, MemorySegment src, long offset, long stride, int n, double[] dst, int pos) {
        if (type == DType.BOOL) {
            for (int i = 0; i < n; i++) dst[pos + i] = src.get(ValueLayout.JAVA_BYTE, offset + i * stride) != 0 ? 0 : Double.NEGATIVE_INFINITY;
        } else {
            loadDoubles(src, offset, stride, n, dst, pos, 1, 1);
        }
    }

    /** Stores {@code src[pos .. pos+n)} to contiguous storage at element {@code offset}, rounding to {@code type}. */
    static void storeFloats(DType type, MemorySegment dst, long offset, float[] src, int pos, int n) {
        switch (type) {
            case FLOAT32 -> MemorySegment.copy(src, pos, dst, ValueLayout.JAVA_FLOAT, offset * 4, n);
            case FLOAT16 -> {
                for (int i = 0; i < n; i++) dst.setAtIndex(ValueLayout.JAVA_SHORT, offset + i, Float.floatToFloat16(src[pos + i]));
            }
            case BFLOAT16 -> {
                for (int i = 0; i < n; i++) dst.setAtIndex(ValueLayout.JAVA_SHORT, offset + i, Elements.floatToBf16(src[pos + i]));
            }
            default -> throw new IllegalArgumentException("no float32 compute path for " + type);
        }
    }
}
