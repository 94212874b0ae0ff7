package dev.kiln.npu.kernels.gemm;

import dev.kiln.npu.Parallel;
import dev.kiln.tensor.DType;

import java.lang.foreign.MemorySegment;

/**
 * The cache-blocked GEMM loop nest shared by every element type (BLIS order): for
 * each {@code nc}-wide slab of B and {@code kc}-deep slice of K, pack an
 * {@code mc x kc} block of A, pack B micro-panels on first use, and run the
 * register-blocked micro-kernel over every {@code mr x nr} tile. Subclasses supply
 * packing (converting element types on the way), the micro-kernel and the tile store.
 *
 * <p>Parallel work is a set of C blocks: whole batch entries when there are enough
 * of them, otherwise each product is cut along N (or M) into one block per worker.
 * Each block packs its own operands, so workers share nothing but the inputs.
 *
 * @param <P> the packed buffer type ({@code float[]}, {@code double[]}, {@code long[]})
 */
abstract class PackedGemm<P> {
    /** A C block under computation, of element type {@code type}: (row, col) is at {@code origin + (row - row0) * ld + (col - col0)}. */
    record Block(MemorySegment segment, DType type, long origin, long ld, int row0, int col0) {
        long index(int row, int col) {
            return origin + (long) (row - row0) * ld + (col - col0);
        }
    }

    final Blocking blocking;

    PackedGemm(Blocking blocking) {
        this.blocking = blocking;
    }

    abstract P newBuffer(int length);

    /** Packs rows [row0, row0+rows) x K [k0, k0+kc) of A into mr-row panels, zero-padding the last. */
    abstract void packA(Operand a, int batch, int row0, int rows, int k0, int kc, P dst);

    /** Packs K [k0, k0+kc) x columns [col0, col0+cols) (cols <= nr) of B into one zero-padded nr-wide panel. */
    abstract void packB(Operand b, int batch, int k0, int kc, int col0, int cols, P dst, int dstOffset);

    /** tile (mr x nr, row-major) = A panel (kc x mr) * B panel (kc x nr). */
    abstract void multiply(int kc, P a, int aOffset, P b, int bOffset, P tile);

    /**
     * The first {@code cols} (fewer than nr) columns of the tile {@link #multiply} computes;
     * by default the whole tile. With {@code wholePanel} the B panel starts at {@code bOffset}
     * (zero-padded past cols), so {@link #multiply} may compute it; otherwise it is the tail of
     * a panel, whose columns past cols belong to the next panel row.
     */
    void multiplyColumns(int kc, P a, int aOffset, P b, int bOffset, P tile, int cols, boolean wholePanel) {
        multiply(kc, a, aOffset, b, bOffset, tile);
    }

    /**
     * The multiple of which a worker's share of columns is: nr by default; finer when
     * {@link #multiplyColumns} computes a partial panel at a cost in proportion to its width.
     */
    int columnGranule() { return blocking.nr(); }

    /**
     * Packs the B panel as {@link #packB} does while computing the first tile of the A block
     * at {@code aOffset} with it, as {@link #multiply}; false (having done nothing) when this
     * operand or panel has no such kernel.
     */
    boolean multiplyPacking(Operand b, int batch, int k0, int kc, int col0, int cols, P a, int aOffset, P dst, int dstOffset, P tile) {
        return false;
    }

    /** Writes (or adds, when {@code accumulate}) the top-left rows x cols of tile to C at (row, col). */
    abstract void store(P tile, int rows, int cols, Block c, int row, int col, boolean accumulate);

    /** Where the C block of rows x cols accumulates: the output itself unless the output type cannot hold partial sums. */
    Block openBlock(GemmProblem p, int batch, int row0, int rows, int col0, int cols) {
        return new Block(p.out(), p.a().dtype(), p.outIndex(batch, row0) + col0, p.n(), row0, col0);
    }

    /** Moves a finished block to the output when {@link #openBlock} accumulated elsewhere. */
    void closeBlock(GemmProblem p, Block c, int batch, int rows, int cols) {}

    /**
     * B (one matrix, {@code k x n}, batch entry 0 of {@code b}) packed whole, as
     * {@link #computeBlock} reads it: for each kc-deep slice of K, the nr-wide panels left
     * to right (the last zero-padded), at {@link #packedPanel}.
     */
    final P packWhole(Operand b, int k, int n) {
        int nr = blocking.nr(), paddedN = Blocking.roundUp(n, nr);
        P dst = newBuffer(Math.toIntExact((long) k * paddedN));
        Parallel.forRange(paddedN / nr, (long) k * n, (from, to) -> {
            for (long j = from; j < to; j++) {
                int col = (int) j * nr;
                for (int pc = 0; pc < k; pc += blocking.kc()) {
                    int kc = Math.min(blocking.kc(), k - pc);
                    packB(b, 0, pc, kc, col, Math.min(nr, n - col), dst, packedPanel(pc, kc, col, n));
                }
            }
        });
        return dst;
    }

    /** Where the panel of K slice [pc, pc+kc) and columns from {@code col} starts in B packed whole ({@link #packWhole}). */
    private int packedPanel(int pc, int kc, int col, int n) {
        return pc * Blocking.roundUp(n, blocking.nr()) + col * kc;
    }

    /**
     * Computes the whole problem, on every worker when it is large enough; then, when
     * {@code epilogue} is not null, applies it to each block of C (an A block's rows by a B
     * slab's columns) right after the block's last K slice, while it is in the nearer caches.
     * {@code packedB}, when not null, is B packed whole ({@link #packWhole}), shared by every
     * batch entry: nothing of B is packed then.
     */
    final void run(GemmProblem p, Epilogue.Bound epilogue, P packedB) {
        run(p, epilogue, packedB, Parallel.inOrder());
    }

    /**
     * {@link #run(GemmProblem, Epilogue.Bound, Object)}, with {@code inOrder} when its chunks
     * will run one after another on this thread: the product is then one tile, as cutting it
     * would only add partial panels and pack A or B twice. In a fresh JVM, whose first calls run
     * in order while the compilers need the cores, that made the W4 block's first result 60 to
     * 200 ms sooner (medians of six fresh JVMs per phase, two runs), the column kernel for partial
     * panels being one more method to warm up. Results are the same bits however it is cut.
     */
    final void run(GemmProblem p, Epilogue.Bound epilogue, P packedB, boolean inOrder) {
        int workers = Parallel.workers();
        long cost = p.flops() / 16;
        boolean parallel = workers > 1 && cost >= Parallel.SERIAL_THRESHOLD && !inOrder;
        boolean enoughEntries = p.batch() % workers == 0 || p.batch() >= 8 * workers;
        int mr = blocking.mr(), nr = blocking.nr();
        int tiles = 1;
        boolean splitColumns = true;
        if (parallel && !enoughEntries) {
            // Cutting N makes every worker pack all of A; cutting M, all of B: duplicate the smaller.
            // B packed whole costs nothing to share, and cutting M leaves every panel whole.
            boolean columnsFit = p.n() >= workers * nr, rowsFit = p.m() >= workers * mr;
            splitColumns = columnsFit && (packedB == null && p.m() <= p.n() || !rowsFit);
            if (columnsFit || rowsFit) tiles = workers;
        }
        int tileCount = tiles;
        boolean byColumns = splitColumns;
        int largestTile = 0;
        for (int t = 0; t < tiles; t++) {
            int extent = byColumns ? p.n() : p.m(), granule = byColumns ? columnGranule() : mr;
            largestTile = Math.max(largestTile, boundary(extent, granule, t + 1, tiles) - boundary(extent, granule, t, tiles));
        }
        int maxRows = byColumns ? p.m() : largestTile, maxCols = byColumns ? largestTile : p.n();
        Parallel.forRange((long) p.batch() * tiles, cost, (from, to) -> {
            Workspace<P> ws = takeWorkspace(p.k(), maxRows, maxCols);
            Epilogue.Worker finisher = epilogue == null ? null : epilogue.newWorker();
            for (long u = from; u < to; u++) {
                int batch = (int) (u / tileCount), tile = (int) (u % tileCount);
                int row0 = 0, row1 = p.m(), col0 = 0, col1 = p.n();
                if (byColumns) {
                    col0 = boundary(p.n(), columnGranule(), tile, tileCount);
                    col1 = boundary(p.n(), columnGranule(), tile + 1, tileCount);
                } else {
                    row0 = boundary(p.m(), mr, tile, tileCount);
                    row1 = boundary(p.m(), mr, tile + 1, tileCount);
                }
                computeBlock(p, ws, packedB, finisher, batch, row0, row1, col0, col1);
            }
            workspaces.set(ws);
        });
    }

    /**
     * Each thread keeps its packing buffers between products (megabytes per call otherwise,
     * whose garbage made a young collection every tenth of a second in a decoder block). A
     * buffer is taken out while in use, so a nested product would get buffers of its own.
     */
    private final ThreadLocal<Workspace<P>> workspaces = new ThreadLocal<>();

    private Workspace<P> takeWorkspace(int k, int rows, int cols) {
        Workspace<P> ws = workspaces.get();
        workspaces.remove();
        return ws != null && ws.fits(k, rows, cols) ? ws : new Workspace<>(this, k, rows, cols);
    }

    /** Start of part {@code part} of {@code parts} of [0, extent), on a multiple of {@code granule}. */
    private static int boundary(int extent, int granule, int part, int parts) {
        long granules = (extent + (long) granule - 1) / granule;
        return (int) Math.min(extent, granules * part / parts * granule);
    }

    private void computeBlock(GemmProblem p, Workspace<P> ws, P packedB, Epilogue.Worker finisher, int batch, int row0, int row1, int col0,
                              int col1) {
        int mr = blocking.mr(), nr = blocking.nr(), k = p.k();
        Block c = openBlock(p, batch, row0, row1 - row0, col0, col1 - col0);
        // With a single A block each B panel is used right after packing: reuse one panel's
        // buffer, which stays in cache, instead of writing a whole slab out to memory.
        boolean panelAtATime = row1 - row0 <= blocking.mc();
        // Equal slabs: a narrow last one would repack all of A for a sliver of C.
        int slabs = (col1 - col0 + blocking.nc() - 1) / blocking.nc();
        int slabWidth = Blocking.roundUp((col1 - col0 + slabs - 1) / Math.max(slabs, 1), nr);
        for (int jc = col0; jc < col1; jc += slabWidth) {
            int nc = Math.min(slabWidth, col1 - jc);
            for (int pc = 0; pc < k; pc += blocking.kc()) {
                int kc = Math.min(blocking.kc(), k - pc);
                boolean accumulate = pc > 0;
                for (int ic = row0; ic < row1; ic += blocking.mc()) {
                    int mc = Math.min(blocking.mc(), row1 - ic);
                    packA(p.a(), batch, ic, mc, pc, kc, ws.a);
                    for (int jr = 0, cols; jr < nc; jr += cols) {
                        P bPanels;
                        int panel, inPanel = 0;
                        if (packedB != null) {
                            // Panels packed whole start at multiples of nr; a worker's columns start at any
                            // multiple of the column granule, so its first panel may be the tail of one.
                            inPanel = (jc + jr) % nr;
                            cols = Math.min(nr - inPanel, nc - jr);
                            bPanels = packedB;
                            panel = packedPanel(pc, kc, jc + jr - inPanel, p.n()) + inPanel;
                        } else {
                            cols = Math.min(nr, nc - jr);
                            // B is packed while the first A block consumes it, so the panel is still in cache.
                            bPanels = ws.b;
                            panel = panelAtATime ? 0 : jr * kc;
                        }
                        int ir = 0;
                        if (ic == row0 && packedB == null) {
                            if (multiplyPacking(p.b(), batch, pc, kc, jc + jr, cols, ws.a, 0, ws.b, panel, ws.tile)) {
                                store(ws.tile, Math.min(mr, mc), cols, c, ic, jc + jr, accumulate);
                                ir = mr;
                            } else {
                                packB(p.b(), batch, pc, kc, jc + jr, cols, ws.b, panel);
                            }
                        }
                        for (; ir < mc; ir += mr) {
                            if (cols < nr) multiplyColumns(kc, ws.a, ir * kc, bPanels, panel, ws.tile, cols, inPanel == 0);
                            else multiply(kc, ws.a, ir * kc, bPanels, panel, ws.tile);
                            store(ws.tile, Math.min(mr, mc - ir), cols, c, ic + ir, jc + jr, accumulate);
                        }
                    }
                    // After the last K slice, the epilogue on the block's rows of the whole slab: long rows of C
                    // and of the operands (per B panel, 48 columns at a time, it cost 1.5 to 2 times as much).
                    if (finisher != null && pc + kc == k) finisher.apply(p, batch, ic, mc, jc, nc);
                }
            }
        }
        closeBlock(p, c, batch, row1 - row0, col1 - col0);
    }

    /** One worker's packing buffers, big enough for C blocks of up to rows x cols. */
    private static final class Workspace<P> {
        final P a, b, tile;
        private final Blocking blocking;
        private final int aLength, bLength;

        Workspace(PackedGemm<P> gemm, int k, int rows, int cols) {
            blocking = gemm.blocking;
            aLength = aLength(blocking, k, rows);
            bLength = bLength(blocking, k, rows, cols);
            a = gemm.newBuffer(aLength);
            b = gemm.newBuffer(bLength);
            tile = gemm.newBuffer(blocking.mr() * blocking.nr());
        }

        boolean fits(int k, int rows, int cols) {
            return aLength >= aLength(blocking, k, rows) && bLength >= bLength(blocking, k, rows, cols);
        }

        private static int aLength(Blocking bl, int k, int rows) {
            return Blocking.roundUp(Math.min(bl.mc(), rows), bl.mr()) * Math.min(bl.kc(), k);
        }

        private static int bLength(Blocking bl, int k, int rows, int cols) {
            int panels = rows <= bl.mc() ? 1 : Blocking.roundUp(Math.min(bl.nc(), cols), bl.nr()) / bl.nr();
            return panels * bl.nr() * Math.min(bl.kc(), k);
        }
    }
}
