package dev.kiln.npu.kernels.gemm;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

import static dev.kiln.npu.kernels.gemm.FloatKernels.MR;
import static dev.kiln.npu.kernels.gemm.FloatKernels.NR;
import static dev.kiln.npu.kernels.gemm.FloatKernels.S;
import static dev.kiln.npu.kernels.gemm.FloatKernels.V;

/**
 * Packed GEMM computing in float32, for float32, float16 and bfloat16 operands: half
 * types are widened while packing, accumulate in a float32 scratch block and are
 * rounded (to nearest even) once, when the block is finished.
 */
public final class FloatGemm extends PackedGemm<float[]> {
    private static final FloatGemm INSTANCE = new FloatGemm();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;

    FloatGemm() {
        super(Blocking.forKernel(MR, NR, Float.BYTES));
    }

    /** Computes {@code p} (float32, float16 or bfloat16 operands of one type; K > 0). */
    public static void compute(GemmProblem p) {
        INSTANCE.run(p, null, null);
    }

    /** Computes {@code p} as {@link #compute(GemmProblem)} does, with B ({@code b}) packed whole at {@code site} when that keeps it. */
    public static void compute(GemmProblem p, WeightPanels site, Tensor b) {
        compute(p, null, site, b);
    }

    /**
     * Computes float32 {@code p}, applying {@code epilogue} (when not null) to C as it is
     * finished, with B packed whole at {@code site} when that keeps it (see {@link WeightPanels}).
     */
    static void compute(GemmProblem p, Epilogue.Bound epilogue, WeightPanels site, Tensor b) {
        float[] packed = site == null || p.b().dtype() != DType.FLOAT32 ? null : site.panelsFor(INSTANCE, p, b);
        INSTANCE.run(p, epilogue, packed);
    }

    @Override
    float[] newBuffer(int length) { return new float[length]; }

    @Override
    void packA(Operand a, int batch, int row0, int rows, int k0, int kc, float[] dst) {
        MemorySegment s = a.segment();
        long cs = a.colStride();
        for (int i = 0; i < rows; i += MR) {
            int panelRows = Math.min(MR, rows - i), d = i * kc;
            int r = 0;
            if (a.dtype() == DType.FLOAT32 && cs == 1) {
                for (; r + 8 <= panelRows; r += 8) {
                    scatterContiguous8(s, a.index(batch, row0 + i + r, k0), a.rowStride(), kc, dst, d + r, MR);
                }
            }
            for (; r < MR; r++) {
                if (r >= panelRows) {
                    for (int p = 0; p < kc; p++) dst[d + p * MR + r] = 0;
                } else if (a.dtype() == DType.FLOAT32 && cs == 1) {
                    scatterContiguous(s, a.index(batch, row0 + i + r, k0), kc, dst, d + r, MR);
                } else {
                    scatter(a.dtype(), s, a.index(batch, row0 + i + r, k0), cs, kc, dst, d + r, MR);
                }
            }
        }
    }

    @Override
    void packB(Operand b, int batch, int k0, int kc, int col0, int cols, float[] dst, int dstOffset) {
        MemorySegment s = b.segment();
        long rs = b.rowStride(), cs = b.colStride();
        if (b.dtype() == DType.FLOAT32 && cs == 1) {
            // Rows of the panel are contiguous: copy them a vector at a time.
            for (int p = 0; p < kc; p++) {
                long src = b.index(batch, k0 + p, col0);
                int d = dstOffset + p * NR;
                for (int v = 0; v < NR; v += V) {
                    FloatVector x;
                    if (v + V <= cols) x = FloatVector.fromMemorySegment(S, s, (src + v) * Float.BYTES, ORDER);
                    else if (v < cols) x = FloatVector.fromMemorySegment(S, s, (src + v) * Float.BYTES, ORDER, S.indexInRange(v, cols));
                    else x = FloatVector.zero(S);
                    x.intoArray(dst, d + v);
                }
            }
            return;
        }
        // Otherwise walk each column along K (contiguous when B is a transposed view, as in
        // a linear layer), scattering into the panel.
        int q = 0;
        if (b.dtype() == DType.FLOAT32 && rs == 1) {
            for (; q + 8 <= cols; q += 8) {
                scatterContiguous8(s, b.index(batch, k0, col0 + q), cs, kc, dst, dstOffset + q, NR);
            }
        }
        for (; q < NR; q++) {
            if (q >= cols) {
                for (int p = 0; p < kc; p++) dst[dstOffset + p * NR + q] = 0;
            } else if (b.dtype() == DType.FLOAT32 && rs == 1) {
                scatterContiguous(s, b.index(batch, k0, col0 + q), kc, dst, dstOffset + q, NR);
            } else {
                scatter(b.dtype(), s, b.index(batch, k0, col0 + q), rs, kc, dst, dstOffset + q, NR);
            }
        }
    }

    /** dst[at + p * step] = src[from + p] for p < n: one row of A or one column of a transposed B. */
    private static void scatterContiguous(MemorySegment s, long from, int n, float[] dst, int at, int step) {
        if (s.isNative() && n <= MAX_BUFFER_FLOATS) {
            FloatBuffer b = floats(s, from, n);
            for (int p = 0; p < n; p++) dst[at + p * step] = b.get(p);
            return;
        }
        for (int p = 0; p < n; p++) dst[at + p * step] = s.getAtIndex(F32, from + p);
    }

    /**
     * Eight adjacent columns of a panel (rows of A, or columns of a transposed B) at once:
     * eight load streams keep more cache misses in flight, and each panel line gets eight
     * stores in a row (measured best of 4, 8 and 16).
     *
     * <p>Read through a {@link FloatBuffer} where the span allows: once compiled it runs as
     * fast as segment reads, and before C2 it is several times faster (a segment read goes
     * through var handle frames the interpreter and C1 do not fold). Packing was about 40% of
     * the first GEMM calls of a fresh JVM; the W4 block's first eager forward spent 60 to 110 ms
     * less in its matmuls.
     */
    private static void scatterContiguous8(MemorySegment s, long from, long columnStride, int n, float[] dst, int at, int step) {
        long span = 7 * columnStride + n;
        if (s.isNative() && span <= MAX_BUFFER_FLOATS) {
            FloatBuffer b = floats(s, from, span);
            int c1 = (int) columnStride, c2 = 2 * c1, c3 = 3 * c1, c4 = 4 * c1, c5 = 5 * c1, c6 = 6 * c1, c7 = 7 * c1;
            for (int p = 0; p < n; p++) {
                int d = at + p * step;
                dst[d] = b.get(p);
                dst[d + 1] = b.get(c1 + p);
                dst[d + 2] = b.get(c2 + p);
                dst[d + 3] = b.get(c3 + p);
                dst[d + 4] = b.get(c4 + p);
                dst[d + 5] = b.get(c5 + p);
                dst[d + 6] = b.get(c6 + p);
                dst[d + 7] = b.get(c7 + p);
            }
            return;
        }
        long f0 = from, f1 = f0 + columnStride, f2 = f1 + columnStride, f3 = f2 + columnStride;
        long f4 = f3 + columnStride, f5 = f4 + columnStride, f6 = f5 + columnStride, f7 = f6 + columnStride;
        for (int p = 0; p < n; p++) {
            int d = at + p * step;
            dst[d] = s.getAtIndex(F32, f0 + p);
            dst[d + 1] = s.getAtIndex(F32, f1 + p);
            dst[d + 2] = s.getAtIndex(F32, f2 + p);
            dst[d + 3] = s.getAtIndex(F32, f3 + p);
            dst[d + 4] = s.getAtIndex(F32, f4 + p);
            dst[d + 5] = s.getAtIndex(F32, f5 + p);
            dst[d + 6] = s.getAtIndex(F32, f6 + p);
            dst[d + 7] = s.getAtIndex(F32, f7 + p);
        }
    }

    /** A byte buffer holds at most 2^31 - 1 bytes. */
    private static final long MAX_BUFFER_FLOATS = Integer.MAX_VALUE / Float.BYTES;

    /** The {@code length} floats of native segment {@code s} from element {@code from}, as a buffer. */
    private static FloatBuffer floats(MemorySegment s, long from, long length) {
        return s.asSlice(from * Float.BYTES, length * Float.BYTES).asByteBuffer().order(ORDER).asFloatBuffer();
    }

    /** dst[at + p * step] = widened src[from + p * stride] for p < n. */
    private static void scatter(DType type, MemorySegment s, long from, long stride, int n, float[] dst, int at, int step) {
        if (type == DType.FLOAT32) {
            for (int p = 0; p < n; p++) dst[at + p * step] = s.getAtIndex(F32, from + p * stride);
        } else {
            for (int p = 0; p < n; p++) dst[at + p * step] = widen(type, s, from + p * stride);
        }
    }

    private static float widen(DType type, MemorySegment s, long index) {
        short bits = s.getAtIndex(ValueLayout.JAVA_SHORT, index);
        return type == DType.FLOAT16 ? Float.float16ToFloat(bits) : Elements.bf16ToFloat(bits);
    }

    @Override
    boolean multiplyPacking(Operand b, int batch, int k0, int kc, int col0, int cols, float[] a, int aOffset, float[] dst, int dstOffset,
                            float[] tile) {
        if (b.dtype() != DType.FLOAT32 || b.colStride() != 1 || cols != NR) return false;
        FloatKernels.multiplyPacking(kc, a, aOffset, b.segment(), b.index(batch, k0, col0), b.rowStride(), dst, dstOffset, tile);
        return true;
    }

    @Override
    void multiply(int kc, float[] a, int aOffset, float[] b, int bOffset, float[] tile) {
        FloatKernels.multiply(kc, a, aOffset, b, bOffset, tile);
    }

    /**
     * A panel's last vector alone by the column kernel; wider edges of a whole panel by the full
     * kernel over its zero padding (at most one wasted vector of three, where two column passes
     * would re-read A). The full kernel is also the hot one: in a fresh JVM the column kernel was
     * a method of its own to warm up, 110 ms of the W4 block's first call.
     */
    @Override
    void multiplyColumns(int kc, float[] a, int aOffset, float[] b, int bOffset, float[] tile, int cols, boolean wholePanel) {
        if (cols > NR - V || wholePanel && cols > V) {
            FloatKernels.multiply(kc, a, aOffset, b, bOffset, tile);
            return;
        }
        for (int column = 0; column < cols; column += V) FloatKernels.multiplyColumn(kc, a, aOffset, b, bOffset, tile, column);
    }

    /** One vector: a partial panel costs in proportion to its vectors ({@link #multiplyColumns}). */
    @Override
    int columnGranule() { return V; }

    @Override
    void store(float[] tile, int rows, int cols, Block c, int row, int col, boolean accumulate) {
        MemorySegment s = c.segment();
        for (int r = 0; r < rows; r++) {
            long o = c.index(row + r, col) * Float.BYTES;
            int t = r * NR;
            for (int v = 0; v < cols; v += V) {
                FloatVector x = FloatVector.fromArray(S, tile, t + v);
                long at = o + (long) v * Float.BYTES;
                if (v + V <= cols) {
                    if (accumulate) x = x.add(FloatVector.fromMemorySegment(S, s, at, ORDER));
                    x.intoMemorySegment(s, at, ORDER);
                } else {
                    VectorMask<Float> m = S.indexInRange(v, cols);
                    if (accumulate) x = x.add(FloatVector.fromMemorySegment(S, s, at, ORDER, m));
                    x.intoMemorySegment(s, at, ORDER, m);
                }
            }
        }
    }

    @Override
    Block openBlock(GemmProblem p, int batch, int row0, int rows, int col0, int cols) {
        if (p.a().dtype() == DType.FLOAT32) return super.openBlock(p, batch, row0, rows, col0, cols);
        MemorySegment scratch = Arena.ofAuto().allocate((long) rows * cols * Float.BYTES, 64);
        return new Block(scratch, DType.FLOAT32, 0, cols, row0, col0);
    }

    @Override
    void closeBlock(GemmProblem p, Block c, int batch, int rows, int cols) {
        DType type = p.a().dtype();
        if (type == DType.FLOAT32) return;
        MemorySegment out = p.out();
        for (int r = 0; r < rows; r++) {
            long dst = p.outIndex(batch, c.row0() + r) + c.col0();
            for (int j = 0; j < cols; j++) {
                float v = c.segment().getAtIndex(F32, c.index(c.row0() + r, c.col0() + j));
                short bits = type == DType.FLOAT16 ? Float.floatToFloat16(v) : Elements.floatToBf16(v);
                out.setAtIndex(ValueLayout.JAVA_SHORT, dst + j, bits);
            }
        }
    }
}
