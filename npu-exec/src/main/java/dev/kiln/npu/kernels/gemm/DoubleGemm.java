package dev.kiln.npu.kernels.gemm;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Packed GEMM in float64 with a 6 x 2-vector DoubleVector micro-kernel (12 accumulators fit any register file). */
public final class DoubleGemm extends PackedGemm<double[]> {
    private static final VectorSpecies<Double> S = DoubleVector.SPECIES_PREFERRED;
    private static final int V = S.length();
    private static final int MR = 6, NR = 2 * V;
    private static final DoubleGemm INSTANCE = new DoubleGemm();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE;

    private DoubleGemm() {
        super(Blocking.forKernel(MR, NR, Double.BYTES));
    }

    /** Computes {@code p} (float64 operands; K > 0). */
    public static void compute(GemmProblem p) {
        INSTANCE.run(p, null, null);
    }

    @Override
    double[] newBuffer(int length) { return new double[length]; }

    @Override
    void packA(Operand a, int batch, int row0, int rows, int k0, int kc, double[] dst) {
        MemorySegment s = a.segment();
        long cs = a.colStride();
        for (int i = 0; i < rows; i += MR) {
            int panelRows = Math.min(MR, rows - i), d = i * kc;
            for (int r = 0; r < MR; r++) {
                long src = r < panelRows ? a.index(batch, row0 + i + r, k0) : 0;
                for (int p = 0; p < kc; p++) dst[d + p * MR + r] = r < panelRows ? s.getAtIndex(F64, src + p * cs) : 0;
            }
        }
    }

    @Override
    void packB(Operand b, int batch, int k0, int kc, int col0, int cols, double[] dst, int dstOffset) {
        MemorySegment s = b.segment();
        if (b.colStride() == 1) {
            for (int p = 0; p < kc; p++) {
                long src = b.index(batch, k0 + p, col0);
                for (int v = 0; v < NR; v += V) {
                    DoubleVector x;
                    if (v + V <= cols) x = DoubleVector.fromMemorySegment(S, s, (src + v) * Double.BYTES, ORDER);
                    else if (v < cols) x = DoubleVector.fromMemorySegment(S, s, (src + v) * Double.BYTES, ORDER, S.indexInRange(v, cols));
                    else x = DoubleVector.zero(S);
                    x.intoArray(dst, dstOffset + p * NR + v);
                }
            }
            return;
        }
        long rs = b.rowStride();
        for (int q = 0; q < NR; q++) {
            long src = q < cols ? b.index(batch, k0, col0 + q) : 0;
            for (int p = 0; p < kc; p++) dst[dstOffset + p * NR + q] = q < cols ? s.getAtIndex(F64, src + p * rs) : 0;
        }
    }

    @Override
    void multiply(int kc, double[] a, int ao, double[] b, int bo, double[] t) {
        DoubleVector c00 = DoubleVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
                c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int p = 0; p < kc; p++) {
            int bp = bo + p * NR, ap = ao + p * MR;
            DoubleVector b0 = DoubleVector.fromArray(S, b, bp), b1 = DoubleVector.fromArray(S, b, bp + V);
            DoubleVector x = DoubleVector.broadcast(S, a[ap]);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = DoubleVector.broadcast(S, a[ap + 1]);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = DoubleVector.broadcast(S, a[ap + 2]);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = DoubleVector.broadcast(S, a[ap + 3]);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = DoubleVector.broadcast(S, a[ap + 4]);
            c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = DoubleVector.broadcast(S, a[ap + 5]);
            c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
        }
        c00.intoArray(t, 0); c01.intoArray(t, V);
        c10.intoArray(t, NR); c11.intoArray(t, NR + V);
        c20.intoArray(t, 2 * NR); c21.intoArray(t, 2 * NR + V);
        c30.intoArray(t, 3 * NR); c31.intoArray(t, 3 * NR + V);
        c40.intoArray(t, 4 * NR); c41.intoArray(t, 4 * NR + V);
        c50.intoArray(t, 5 * NR); c51.intoArray(t, 5 * NR + V);
    }

    @Override
    void store(double[] tile, int rows, int cols, Block c, int row, int col, boolean accumulate) {
        MemorySegment s = c.segment();
        for (int r = 0; r < rows; r++) {
            long o = c.index(row + r, col) * Double.BYTES;
            for (int v = 0; v < cols; v += V) {
                DoubleVector x = DoubleVector.fromArray(S, tile, r * NR + v);
                long at = o + (long) v * Double.BYTES;
                VectorMask<Double> m = S.indexInRange(v, cols);
                if (accumulate) x = x.add(DoubleVector.fromMemorySegment(S, s, at, ORDER, m));
                x.intoMemorySegment(s, at, ORDER, m);
            }
        }
    }
}
