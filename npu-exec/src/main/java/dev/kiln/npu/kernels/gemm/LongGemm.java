package dev.kiln.npu.kernels.gemm;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Packed GEMM for the integer types: products and sums in long, wrapping like Java
 * arithmetic. A narrower result is the long result modulo 2^bits, so partial sums can
 * accumulate in the output itself.
 */
public final class LongGemm extends PackedGemm<long[]> {
    private static final VectorSpecies<Long> S = LongVector.SPECIES_PREFERRED;
    private static final int V = S.length();
    private static final int MR = 4, NR = 2 * V;
    private static final LongGemm INSTANCE = new LongGemm();

    private LongGemm() {
        super(Blocking.forKernel(MR, NR, Long.BYTES));
    }

    /** Computes {@code p} (integer operands of one type; K > 0). */
    public static void compute(GemmProblem p) {
        INSTANCE.run(p, null, null);
    }

    @Override
    long[] newBuffer(int length) { return new long[length]; }

    private static long read(Operand o, long index) {
        return switch (o.dtype()) {
            case INT32 -> o.segment().getAtIndex(ValueLayout.JAVA_INT, index);
            case INT64, UINT64 -> o.segment().getAtIndex(ValueLayout.JAVA_LONG, index);
            default -> Elements.readLong(o.dtype(), o.segment(), index);
        };
    }

    @Override
    void packA(Operand a, int batch, int row0, int rows, int k0, int kc, long[] dst) {
        for (int i = 0; i < rows; i += MR) {
            int panelRows = Math.min(MR, rows - i), d = i * kc;
            for (int r = 0; r < MR; r++) {
                long src = r < panelRows ? a.index(batch, row0 + i + r, k0) : 0;
                for (int p = 0; p < kc; p++) dst[d + p * MR + r] = r < panelRows ? read(a, src + p * a.colStride()) : 0;
            }
        }
    }

    @Override
    void packB(Operand b, int batch, int k0, int kc, int col0, int cols, long[] dst, int dstOffset) {
        for (int q = 0; q < NR; q++) {
            long src = q < cols ? b.index(batch, k0, col0 + q) : 0;
            for (int p = 0; p < kc; p++) dst[dstOffset + p * NR + q] = q < cols ? read(b, src + p * b.rowStride()) : 0;
        }
    }

    @Override
    void multiply(int kc, long[] a, int ao, long[] b, int bo, long[] t) {
        LongVector c00 = LongVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        for (int p = 0; p < kc; p++) {
            int bp = bo + p * NR, ap = ao + p * MR;
            LongVector b0 = LongVector.fromArray(S, b, bp), b1 = LongVector.fromArray(S, b, bp + V);
            LongVector x = LongVector.broadcast(S, a[ap]);
            c00 = c00.add(x.mul(b0)); c01 = c01.add(x.mul(b1));
            x = LongVector.broadcast(S, a[ap + 1]);
            c10 = c10.add(x.mul(b0)); c11 = c11.add(x.mul(b1));
            x = LongVector.broadcast(S, a[ap + 2]);
            c20 = c20.add(x.mul(b0)); c21 = c21.add(x.mul(b1));
            x = LongVector.broadcast(S, a[ap + 3]);
            c30 = c30.add(x.mul(b0)); c31 = c31.add(x.mul(b1));
        }
        c00.intoArray(t, 0); c01.intoArray(t, V);
        c10.intoArray(t, NR); c11.intoArray(t, NR + V);
        c20.intoArray(t, 2 * NR); c21.intoArray(t, 2 * NR + V);
        c30.intoArray(t, 3 * NR); c31.intoArray(t, 3 * NR + V);
    }

    @Override
    void store(long[] tile, int rows, int cols, Block c, int row, int col, boolean accumulate) {
        MemorySegment s = c.segment();
        DType type = c.type();
        for (int r = 0; r < rows; r++) {
            long o = c.index(row + r, col);
            for (int j = 0; j < cols; j++) {
                long v = tile[r * NR + j];
                if (type == DType.INT32) {
                    int prev = accumulate ? s.getAtIndex(ValueLayout.JAVA_INT, o + j) : 0;
                    s.setAtIndex(ValueLayout.JAVA_INT, o + j, (int) (prev + v));
                } else if (type == DType.INT64 || type == DType.UINT64) {
                    long prev = accumulate ? s.getAtIndex(ValueLayout.JAVA_LONG, o + j) : 0;
                    s.setAtIndex(ValueLayout.JAVA_LONG, o + j, prev + v);
                } else {
                    long prev = accumulate ? Elements.readLong(type, s, o + j) : 0;
                    Elements.writeLong(type, s, o + j, prev + v);
                }
            }
        }
    }
}
