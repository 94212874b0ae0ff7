package dev.kiln.npu.kernels.gemm;

/**
 * Register and cache blocking of a packed GEMM (the BLIS loop nest). The micro-kernel
 * computes an {@code mr x nr} tile of C in registers. A {@code kc x nr} micro-panel
 * of packed B is sized to stay in L1 while an {@code mc x kc} block of packed A
 * stays in L2 and streams past it; {@code nc} columns of B are packed per pass.
 */
record Blocking(int mr, int nr, int kc, int mc, int nc) {
    /** Bytes of packed B micro-panel kept in a 32 KiB L1 with room for the A stream and C tile. */
    private static final int L1_PANEL_BYTES = 24 * 1024;
    /** Bytes of packed A block kept in L2; small blocks measured best (the B panel, not A, is the L2 traffic). */
    private static final int L2_BLOCK_BYTES = 48 * 1024;
    private static final int PACKED_COLUMNS = 4096;

    /** Blocking for an {@code mr x nr} kernel over elements of {@code elementBytes}. */
    static Blocking forKernel(int mr, int nr, int elementBytes) {
        int kc = Math.max(32, L1_PANEL_BYTES / (nr * elementBytes) / 16 * 16);
        int mc = Math.max(mr, L2_BLOCK_BYTES / (kc * elementBytes) / mr * mr);
        int nc = Math.max(nr, PACKED_COLUMNS / nr * nr);
        return new Blocking(mr, nr, kc, mc, nc);
    }

    /** {@code x} rounded up to a multiple of {@code step}. */
    static int roundUp(int x, int step) {
        return (x + step - 1) / step * step;
    }
}
