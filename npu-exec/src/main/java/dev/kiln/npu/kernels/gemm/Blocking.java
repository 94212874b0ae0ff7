package dev.kiln.npu.kernels.gemm;

/**
 * Register and cache blocking of a packed GEMM (the BLIS loop nest). The micro-kernel
 * computes an {@code mr x nr} tile of C in registers from a {@code kc x mr} panel of
 * packed A and a {@code kc x nr} panel of packed B; an {@code mc x kc} block of A is
 * packed per pass over a {@code kc x nc} slab of B.
 *
 * <p>Sizes are budgets in bytes, measured rather than derived from L1: the classic
 * choice (a B panel of about half of L1, kc = 128 for 8 x 48 floats) ran 15-25%
 * slower on Zen 4 than a B panel in L2 with a deep kc, because each kc pass
 * re-reads and re-writes C and every micro-kernel call pays for its tile store.
 * The A block and B panel share L2 (1-2 MiB per core on current x86 and Arm cores);
 * the B slab sits in the last-level cache. The A block takes half of a 1 MiB L2, 256 rows
 * at the deepest kc: a linear layer over 256 tokens then packs A as one block, and each B
 * panel serves all of its rows right after packing. With 384 KiB (192 rows), the rows past
 * 192 formed a second block that read every B panel again from the slab: the W4 decoder
 * block ran 11 to 13% slower, eager and compiled alike, and lone products of 256 to 1024
 * rows 1 to 4%.
 */
record Blocking(int mr, int nr, int kc, int mc, int nc) {
    private static final int B_PANEL_BYTES = 96 * 1024;
    private static final int A_BLOCK_BYTES = 512 * 1024;
    private static final int B_SLAB_BYTES = 4 * 1024 * 1024;
    /** Deeper passes gain nothing once the tile store is amortised, and narrow kernels would get very deep ones. */
    private static final int MAX_KC = 512;

    /** Blocking for an {@code mr x nr} kernel over elements of {@code elementBytes}. */
    static Blocking forKernel(int mr, int nr, int elementBytes) {
        int kc = Math.min(MAX_KC, Math.max(16, B_PANEL_BYTES / (nr * elementBytes) / 16 * 16));
        int mc = Math.max(mr, A_BLOCK_BYTES / (kc * elementBytes) / mr * mr);
        int nc = Math.max(nr, B_SLAB_BYTES / (kc * elementBytes) / nr * nr);
        return new Blocking(mr, nr, kc, mc, nc);
    }

    /** {@code x} rounded up to a multiple of {@code step}. */
    static int roundUp(int x, int step) {
        return (x + step - 1) / step * step;
    }
}
