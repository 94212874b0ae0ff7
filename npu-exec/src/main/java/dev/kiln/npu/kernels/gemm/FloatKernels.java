package dev.kiln.npu.kernels.gemm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Register-blocked float32 micro-kernels: tile = A panel (kc x mr, mr values per k)
 * times B panel (kc x nr, nr values per k), with one FloatVector accumulator per
 * vector of the tile, each updated by one fma per k. The accumulators are separate
 * locals (not an array) so C2 keeps them in registers; the result goes to a heap
 * tile, which keeps these methods small enough to compile without boxing.
 */
final class FloatKernels {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();

    /**
     * 24 accumulators need 32 vector registers: AVX-512, SVE and NEON have them,
     * AVX2 has 16, where the 6 x 2-vector kernel (12 accumulators) avoids spilling.
     */
    static final boolean WIDE_REGISTER_FILE = !(isX86() && S.vectorBitSize() < 512);

    static final int MR = WIDE_REGISTER_FILE ? 8 : 6;
    static final int NR = (WIDE_REGISTER_FILE ? 3 : 2) * V;

    private FloatKernels() {}

    private static boolean isX86() {
        String arch = System.getProperty("os.arch", "");
        return arch.equals("amd64") || arch.equals("x86_64") || arch.equals("x86") || arch.equals("i386");
    }

    static void multiply(int kc, float[] a, int ao, float[] b, int bo, float[] tile) {
        if (WIDE_REGISTER_FILE) multiply8x3(kc, a, ao, b, bo, tile);
        else multiply6x2(kc, a, ao, b, bo, tile);
    }

    /**
     * Columns [column, column + V) of the tile {@link #multiply} computes, from the same
     * packed panels: for a panel's last few columns, where the full kernel would spend up
     * to two thirds of its multiplications on padding. Each element is the same sequence of
     * fmas as in the full kernel, so results are identical.
     */
    static void multiplyColumn(int kc, float[] a, int ao, float[] b, int bo, float[] tile, int column) {
        if (WIDE_REGISTER_FILE) multiplyColumn8(kc, a, ao, b, bo + column, tile, column);
        else multiplyColumn6(kc, a, ao, b, bo + column, tile, column);
    }

    private static void multiplyColumn8(int kc, float[] a, int ao, float[] b, int bo, float[] t, int column) {
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        for (int p = 0; p < kc; p++) {
            int ap = ao + p * 8;
            FloatVector b0 = FloatVector.fromArray(S, b, bo + p * NR);
            c0 = FloatVector.broadcast(S, a[ap]).fma(b0, c0);
            c1 = FloatVector.broadcast(S, a[ap + 1]).fma(b0, c1);
            c2 = FloatVector.broadcast(S, a[ap + 2]).fma(b0, c2);
            c3 = FloatVector.broadcast(S, a[ap + 3]).fma(b0, c3);
            c4 = FloatVector.broadcast(S, a[ap + 4]).fma(b0, c4);
            c5 = FloatVector.broadcast(S, a[ap + 5]).fma(b0, c5);
            c6 = FloatVector.broadcast(S, a[ap + 6]).fma(b0, c6);
            c7 = FloatVector.broadcast(S, a[ap + 7]).fma(b0, c7);
        }
        c0.intoArray(t, column); c1.intoArray(t, NR + column); c2.intoArray(t, 2 * NR + column); c3.intoArray(t, 3 * NR + column);
        c4.intoArray(t, 4 * NR + column); c5.intoArray(t, 5 * NR + column); c6.intoArray(t, 6 * NR + column); c7.intoArray(t, 7 * NR + column);
    }

    private static void multiplyColumn6(int kc, float[] a, int ao, float[] b, int bo, float[] t, int column) {
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        for (int p = 0; p < kc; p++) {
            int ap = ao + p * 6;
            FloatVector b0 = FloatVector.fromArray(S, b, bo + p * NR);
            c0 = FloatVector.broadcast(S, a[ap]).fma(b0, c0);
            c1 = FloatVector.broadcast(S, a[ap + 1]).fma(b0, c1);
            c2 = FloatVector.broadcast(S, a[ap + 2]).fma(b0, c2);
            c3 = FloatVector.broadcast(S, a[ap + 3]).fma(b0, c3);
            c4 = FloatVector.broadcast(S, a[ap + 4]).fma(b0, c4);
            c5 = FloatVector.broadcast(S, a[ap + 5]).fma(b0, c5);
        }
        c0.intoArray(t, column); c1.intoArray(t, NR + column); c2.intoArray(t, 2 * NR + column);
        c3.intoArray(t, 3 * NR + column); c4.intoArray(t, 4 * NR + column); c5.intoArray(t, 5 * NR + column);
    }

    /**
     * {@link #multiply} with a B panel read straight from row-major float32 memory (row p of
     * the panel at element {@code from + p * rowStride} of {@code src}, a full {@code NR}
     * columns) and packed into {@code b} at {@code bo} on the way. Loading B inside the
     * kernel lets its cache misses overlap the FMAs, which a separate packing loop cannot:
     * with few rows of A each B panel serves only a few tiles, so its packing weighs (one
     * core, [64,1024] x [1024,4096]: 10-15% faster than packing first). Spreading the next
     * panel's loads over all of the current panel's tiles measured slower than this.
     */
    static void multiplyPacking(int kc, float[] a, int ao, MemorySegment src, long from, long rowStride, float[] b, int bo, float[] tile) {
        if (WIDE_REGISTER_FILE) multiplyPacking8x3(kc, a, ao, src, from, rowStride, b, bo, tile);
        else multiplyPacking6x2(kc, a, ao, src, from, rowStride, b, bo, tile);
    }

    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    private static void multiplyPacking8x3(int kc, float[] a, int ao, MemorySegment src, long from, long rowStride, float[] b, int bo,
                                           float[] t) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00,
                c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00,
                c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00,
                c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
        long rowBytes = rowStride * Float.BYTES, at = from * Float.BYTES;
        for (int p = 0; p < kc; p++, at += rowBytes) {
            int bp = bo + p * (3 * V), ap = ao + p * 8;
            FloatVector b0 = FloatVector.fromMemorySegment(S, src, at, ORDER),
                    b1 = FloatVector.fromMemorySegment(S, src, at + V * Float.BYTES, ORDER),
                    b2 = FloatVector.fromMemorySegment(S, src, at + 2 * V * Float.BYTES, ORDER);
            b0.intoArray(b, bp); b1.intoArray(b, bp + V); b2.intoArray(b, bp + 2 * V);
            FloatVector x = FloatVector.broadcast(S, a[ap]);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01); c02 = x.fma(b2, c02);
            x = FloatVector.broadcast(S, a[ap + 1]);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11); c12 = x.fma(b2, c12);
            x = FloatVector.broadcast(S, a[ap + 2]);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21); c22 = x.fma(b2, c22);
            x = FloatVector.broadcast(S, a[ap + 3]);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31); c32 = x.fma(b2, c32);
            x = FloatVector.broadcast(S, a[ap + 4]);
            c40 = x.fma(b0, c40); c41 = x.fma(b1, c41); c42 = x.fma(b2, c42);
            x = FloatVector.broadcast(S, a[ap + 5]);
            c50 = x.fma(b0, c50); c51 = x.fma(b1, c51); c52 = x.fma(b2, c52);
            x = FloatVector.broadcast(S, a[ap + 6]);
            c60 = x.fma(b0, c60); c61 = x.fma(b1, c61); c62 = x.fma(b2, c62);
            x = FloatVector.broadcast(S, a[ap + 7]);
            c70 = x.fma(b0, c70); c71 = x.fma(b1, c71); c72 = x.fma(b2, c72);
        }
        int nr = 3 * V;
        c00.intoArray(t, 0); c01.intoArray(t, V); c02.intoArray(t, 2 * V);
        c10.intoArray(t, nr); c11.intoArray(t, nr + V); c12.intoArray(t, nr + 2 * V);
        c20.intoArray(t, 2 * nr); c21.intoArray(t, 2 * nr + V); c22.intoArray(t, 2 * nr + 2 * V);
        c30.intoArray(t, 3 * nr); c31.intoArray(t, 3 * nr + V); c32.intoArray(t, 3 * nr + 2 * V);
        c40.intoArray(t, 4 * nr); c41.intoArray(t, 4 * nr + V); c42.intoArray(t, 4 * nr + 2 * V);
        c50.intoArray(t, 5 * nr); c51.intoArray(t, 5 * nr + V); c52.intoArray(t, 5 * nr + 2 * V);
        c60.intoArray(t, 6 * nr); c61.intoArray(t, 6 * nr + V); c62.intoArray(t, 6 * nr + 2 * V);
        c70.intoArray(t, 7 * nr); c71.intoArray(t, 7 * nr + V); c72.intoArray(t, 7 * nr + 2 * V);
    }

    private static void multiplyPacking6x2(int kc, float[] a, int ao, MemorySegment src, long from, long rowStride, float[] b, int bo,
                                           float[] t) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
                c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        long rowBytes = rowStride * Float.BYTES, at = from * Float.BYTES;
        for (int p = 0; p < kc; p++, at += rowBytes) {
            int bp = bo + p * (2 * V), ap = ao + p * 6;
            FloatVector b0 = FloatVector.fromMemorySegment(S, src, at, ORDER),
                    b1 = FloatVector.fromMemorySegment(S, src, at + V * Float.BYTES, ORDER);
            b0.intoArray(b, bp); b1.intoArray(b, bp + V);
            FloatVector x = FloatVector.broadcast(S, a[ap]);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a[ap + 1]);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a[ap + 2]);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a[ap + 3]);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, a[ap + 4]);
            c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, a[ap + 5]);
            c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
        }
        int nr = 2 * V;
        c00.intoArray(t, 0); c01.intoArray(t, V);
        c10.intoArray(t, nr); c11.intoArray(t, nr + V);
        c20.intoArray(t, 2 * nr); c21.intoArray(t, 2 * nr + V);
        c30.intoArray(t, 3 * nr); c31.intoArray(t, 3 * nr + V);
        c40.intoArray(t, 4 * nr); c41.intoArray(t, 4 * nr + V);
        c50.intoArray(t, 5 * nr); c51.intoArray(t, 5 * nr + V);
    }

    private static void multiply8x3(int kc, float[] a, int ao, float[] b, int bo, float[] t) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00,
                c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00,
                c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00,
                c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
        for (int p = 0; p < kc; p++) {
            int bp = bo + p * (3 * V), ap = ao + p * 8;
            FloatVector b0 = FloatVector.fromArray(S, b, bp), b1 = FloatVector.fromArray(S, b, bp + V),
                    b2 = FloatVector.fromArray(S, b, bp + 2 * V);
            FloatVector x = FloatVector.broadcast(S, a[ap]);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01); c02 = x.fma(b2, c02);
            x = FloatVector.broadcast(S, a[ap + 1]);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11); c12 = x.fma(b2, c12);
            x = FloatVector.broadcast(S, a[ap + 2]);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21); c22 = x.fma(b2, c22);
            x = FloatVector.broadcast(S, a[ap + 3]);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31); c32 = x.fma(b2, c32);
            x = FloatVector.broadcast(S, a[ap + 4]);
            c40 = x.fma(b0, c40); c41 = x.fma(b1, c41); c42 = x.fma(b2, c42);
            x = FloatVector.broadcast(S, a[ap + 5]);
            c50 = x.fma(b0, c50); c51 = x.fma(b1, c51); c52 = x.fma(b2, c52);
            x = FloatVector.broadcast(S, a[ap + 6]);
            c60 = x.fma(b0, c60); c61 = x.fma(b1, c61); c62 = x.fma(b2, c62);
            x = FloatVector.broadcast(S, a[ap + 7]);
            c70 = x.fma(b0, c70); c71 = x.fma(b1, c71); c72 = x.fma(b2, c72);
        }
        int nr = 3 * V;
        c00.intoArray(t, 0); c01.intoArray(t, V); c02.intoArray(t, 2 * V);
        c10.intoArray(t, nr); c11.intoArray(t, nr + V); c12.intoArray(t, nr + 2 * V);
        c20.intoArray(t, 2 * nr); c21.intoArray(t, 2 * nr + V); c22.intoArray(t, 2 * nr + 2 * V);
        c30.intoArray(t, 3 * nr); c31.intoArray(t, 3 * nr + V); c32.intoArray(t, 3 * nr + 2 * V);
        c40.intoArray(t, 4 * nr); c41.intoArray(t, 4 * nr + V); c42.intoArray(t, 4 * nr + 2 * V);
        c50.intoArray(t, 5 * nr); c51.intoArray(t, 5 * nr + V); c52.intoArray(t, 5 * nr + 2 * V);
        c60.intoArray(t, 6 * nr); c61.intoArray(t, 6 * nr + V); c62.intoArray(t, 6 * nr + 2 * V);
        c70.intoArray(t, 7 * nr); c71.intoArray(t, 7 * nr + V); c72.intoArray(t, 7 * nr + 2 * V);
    }

    private static void multiply6x2(int kc, float[] a, int ao, float[] b, int bo, float[] t) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
                c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int p = 0; p < kc; p++) {
            int bp = bo + p * (2 * V), ap = ao + p * 6;
            FloatVector b0 = FloatVector.fromArray(S, b, bp), b1 = FloatVector.fromArray(S, b, bp + V);
            FloatVector x = FloatVector.broadcast(S, a[ap]);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a[ap + 1]);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a[ap + 2]);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a[ap + 3]);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, a[ap + 4]);
            c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, a[ap + 5]);
            c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
        }
        int nr = 2 * V;
        c00.intoArray(t, 0); c01.intoArray(t, V);
        c10.intoArray(t, nr); c11.intoArray(t, nr + V);
        c20.intoArray(t, 2 * nr); c21.intoArray(t, 2 * nr + V);
        c30.intoArray(t, 3 * nr); c31.intoArray(t, 3 * nr + V);
        c40.intoArray(t, 4 * nr); c41.intoArray(t, 4 * nr + V);
        c50.intoArray(t, 5 * nr); c51.intoArray(t, 5 * nr + V);
    }
}
