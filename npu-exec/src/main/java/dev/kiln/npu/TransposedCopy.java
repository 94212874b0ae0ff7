package dev.kiln.npu;

import dev.kiln.npu.device.Dma;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Copies a transposed view into contiguous memory in square blocks. Copied run by run along
 * its last dimension, a transposed view is read one element per source row: each on another
 * cache line and, once rows reach 4 KiB, another page. A [2048, 2048] float32 transpose took
 * 3 ns per element that way, twelve times a contiguous copy. A block of 64 x 64 elements
 * instead reads 64 source rows a run of 64 elements each (four cache lines, which the
 * hardware prefetchers follow) and writes 64 destination rows likewise, transposed in
 * between: in vector registers for 4-byte elements ({@link IntTiles}), through two arrays in
 * L1 for other widths and partial blocks.
 *
 * <p>A view is {@linkplain #plan planned} as batches of [rows, cols] matrices whose rows
 * run contiguously in the source: {@code out[b][r][c] = src[base(b) + r + c * colStride]},
 * the bits copied unchanged, whatever the dtype.
 */
public final class TransposedCopy {
    /** Elements per side of a block; 32 (runs of two cache lines) measured a third slower out of cache. */
    static final int BLOCK = 64;
    /** Below this column stride (in elements) runs along the last dimension share cache lines and pages well enough. */
    static final long MIN_COLUMN_STRIDE = 64;

    /**
     * A view as batches of transposed matrices: {@code batchDims} and {@code batchStrides} (elements)
     * index the batches from {@code base}; each is {@code rows x cols} with rows at stride 1 and columns at {@code colStride}.
     */
    public record Plan(int[] batchDims, long[] batchStrides, long base, int rows, int cols, long colStride, int elementBytes) {
        public long batches() {
            long n = 1;
            for (int d : batchDims) n *= d;
            return n;
        }

        public long elements() { return batches() * rows * cols; }
    }

    private TransposedCopy() {}

    /**
     * The plan for copying {@code view} in blocks, or null when it is not a transpose: after
     * merging the dimensions laid out as one, the last but one must have stride 1 and the last
     * a stride of at least {@value #MIN_COLUMN_STRIDE} elements. Whether blocks pay is {@link #pays}.
     */
    public static Plan plan(Tensor view) {
        StridedIndex.Runs runs = StridedIndex.runs(view.shape().dims(), view.strides());
        int rank = runs.dims().length;
        if (rank < 2) return null;
        long colStride = runs.strides()[rank - 1];
        if (runs.strides()[rank - 2] != 1 || Math.abs(colStride) < MIN_COLUMN_STRIDE) return null;
        return new Plan(java.util.Arrays.copyOf(runs.dims(), rank - 2), java.util.Arrays.copyOf(runs.strides(), rank - 2),
                view.layout().offset(), runs.dims()[rank - 2], runs.dims()[rank - 1], colStride, view.dtype().byteSize());
    }

    /**
     * The views worth blocking. Run by run, a transpose whose columns lie a multiple of 2 KiB
     * apart (a row of 512, 1024, 1536, 2048 floats) reads into a few L1 sets, which evict one
     * another at every element; blocks avoid that. Otherwise its runs hit the caches and blocks
     * pay only once the view outgrows the TLB's reach. In one JVM, two workers, float32, each
     * way in turn 16 calls at a time (run by run / blocked, medians): columns 2 KiB apart,
     * [512, 512] 1.11 and 1.36, [2048, 512] 1.58, [3000, 512] 1.86; 4 KiB apart, [1024, 1024]
     * 2.71, [3000, 1024] 2.33; 1 KiB or 512 bytes apart, [256, 256] 1.03 and 1.19, [1024, 256]
     * 0.99, [4096, 256] 1.25, [8192, 128] 1.12 (not blocked: too little gained); other columns,
     * [800, 800] 0.82, [2000, 300] 0.72, [1000, 1000] 0.68, [1024, 3000] 0.70 (12 MB), and
     * [9000, 1000] 1.47 (36 MB, columns 4000 bytes apart); under 1 MiB, [90, 90] 0.14. So: columns
     * a multiple of 2 KiB apart, or any view of at least {@value #MIN_UNALIASED_BYTES} bytes; none
     * under {@value #MIN_BYTES} bytes.
     */
    static final long MIN_BYTES = 1L << 20, MIN_UNALIASED_BYTES = 32L << 20, ALIASING_COLUMN_BYTES = 2048;

    /** Whether copying {@code p} in blocks beats copying it run by run (see {@link #MIN_BYTES}). */
    public static boolean pays(Plan p) {
        long bytes = p.elements() * p.elementBytes(), column = Math.abs(p.colStride()) * p.elementBytes();
        return bytes >= MIN_BYTES && (column % ALIASING_COLUMN_BYTES == 0 || bytes >= MIN_UNALIASED_BYTES);
    }

    /** {@link #plan} of {@code view} when blocking {@linkplain #pays pays}; null otherwise. */
    public static Plan payingPlan(Tensor view) {
        // Asked of every large operand of every pointwise launch: the common answers without allocating.
        if (view.numel() * view.dtype().byteSize() < MIN_BYTES || view.isContiguous()) return null;
        Plan p = plan(view);
        return p != null && pays(p) ? p : null;
    }

    /**
     * {@code x} as a kernel that walks it along the last dimension of {@code shape} reads it
     * best: {@code x} itself, or, when it is a transpose of that very shape that {@linkplain
     * #pays pays} blocking, a contiguous copy made in blocks, counted by {@code dma} when not null.
     */
    public static Tensor untangled(Tensor x, Shape shape, Dma.Transfer dma) {
        if (!x.shape().equals(shape)) return x;
        Plan p = payingPlan(x);
        if (p == null) return x;
        Tensor out = Tensor.empty(x.dtype(), x.shape());
        copyAll(p, x.storage().segment(), out.storage().segment(), out.layout().offset(), dma);
        return out;
    }

    /** {@code in}, or a copy of the array with each operand {@linkplain #untangled(Tensor, Shape, Dma.Transfer) untangled} for {@code shape}. */
    public static Tensor[] untangled(Tensor[] in, Shape shape, Dma.Transfer dma) {
        Tensor[] out = in;
        for (int i = 0; i < in.length; i++) {
            Tensor t = untangled(in[i], shape, dma);
            if (t != in[i]) {
                if (out == in) out = in.clone();
                out[i] = t;
            }
        }
        return out;
    }

    /** Copies the whole of {@code p} into contiguous {@code dst} from element {@code dstBase}, across the workers, counted by {@code dma} when not null. */
    public static void copyAll(Plan p, MemorySegment src, MemorySegment dst, long dstBase, Dma.Transfer dma) {
        Parallel.forRange(bands(p), p.elements(), (from, to) -> {
            long copied = copy(p, from, to, src, dst, dstBase);
            if (dma != null) dma.copied(copied * p.elementBytes());
        });
    }

    /** Units of work of {@link #copy}: one per band of {@value #BLOCK} rows of one batch. */
    public static long bands(Plan p) {
        return p.batches() * ((p.rows() + BLOCK - 1) / BLOCK);
    }

    /**
     * Copies bands [from, to) of {@code p} from {@code src} into contiguous {@code dst} starting at
     * element {@code dstBase} (the whole view's first element); returns the elements copied.
     */
    public static long copy(Plan p, long from, long to, MemorySegment src, MemorySegment dst, long dstBase) {
        long bandsPerBatch = (p.rows() + BLOCK - 1) / BLOCK, copied = 0;
        Blocks blocks = new Blocks(p.elementBytes());
        int[] tile = new int[IntTiles.V * IntTiles.V];
        for (long band = from; band < to; band++) {
            long batch = band / bandsPerBatch;
            int r0 = (int) (band % bandsPerBatch) * BLOCK, rows = Math.min(BLOCK, p.rows() - r0);
            long srcBand = StridedIndex.offset(p.batchDims(), p.batchStrides(), p.base(), batch) + r0;
            long dstBand = dstBase + (batch * p.rows() + r0) * p.cols();
            for (int c0 = 0; c0 < p.cols(); c0 += BLOCK) {
                int cols = Math.min(BLOCK, p.cols() - c0);
                long at = srcBand + c0 * p.colStride(), into = dstBand + c0;
                if (p.elementBytes() == Integer.BYTES && IntTiles.usable()) {
                    IntTiles.transpose(tile, blocks, src, at, p.colStride(), dst, into, p.cols(), rows, cols);
                } else {
                    block(blocks, src, at, p.colStride(), dst, into, p.cols(), rows, cols);
                }
            }
            copied += (long) rows * p.cols();
        }
        return copied;
    }

    /**
     * {@code dst[to + r * dstRowStride + c] = src[from + r + c * colStride]} for r < rows, c < cols,
     * through two heap blocks: each source run is read whole into one, transposed into the
     * other, each destination run written whole from it. Written straight between the
     * segments, one side strides by a row: with rows of a power of two (8 KiB apart), its
     * lines fall in one L1 set and evict each other at every element (5 ns per element).
     */
    private static void block(Blocks b, MemorySegment src, long from, long colStride, MemorySegment dst, long to, long dstRowStride,
                              int rows, int cols) {
        b.ensureArrays();
        ValueLayout layout = b.layout;
        long bytes = layout.byteSize();
        for (int c = 0; c < cols; c++) MemorySegment.copy(src, layout, (from + c * colStride) * bytes, b.read, c * BLOCK, rows);
        b.transpose(rows, cols);
        for (int r = 0; r < rows; r++) MemorySegment.copy(b.written, r * BLOCK, dst, layout, (to + r * dstRowStride) * bytes, cols);
    }

    /**
     * A block of 4-byte elements transposed in vector registers, tile by tile: a tile of V x V
     * elements (V the preferred species' lanes, 16 with AVX-512) is V source runs, and its
     * transpose V destination runs. log2(V) stages each pair rows i and i + h (h = V/2, ..., 1)
     * and exchange their halves of size h by two two-vector selections. Stages go two at a
     * time: rows i, i + q, i + h and i + h + q (q = h/2) are closed under both, so four rows are
     * loaded, exchanged twice in registers and stored. The first pair loads from the source, the
     * last stores to the destination; only between pairs (and before a last odd stage) does the
     * tile pass through an L1 array. With a pass after every stage, three for V = 16, a [1024,
     * 1024] float32 transpose took 0.70 ms on two workers against 0.41 (in one JVM, alternating),
     * [512, 512] 0.19 against 0.13, [2048, 2048] 4.2 to 5.0 against 4.0 to 4.2.
     */
    static final class IntTiles {
        static final VectorSpecies<Integer> S = IntVector.SPECIES_PREFERRED;
        static final int V = S.length();
        private static final ByteOrder ORDER = ByteOrder.nativeOrder();
        /** Per stage (h = V/2 first): lane indices into (row i, row i + h) for the new rows i and i + h. */
        private static final IntVector[] LOW = new IntVector[Integer.numberOfTrailingZeros(V)], HIGH = new IntVector[LOW.length];

        static {
            for (int stage = 0, h = V / 2; h >= 1; stage++, h /= 2) {
                int[] low = new int[V], high = new int[V];
                for (int l = 0; l < V; l++) {
                    boolean first = (l & h) == 0;
                    low[l] = first ? l : l - h + V;
                    high[l] = first ? l + h : l + V;
                }
                LOW[stage] = IntVector.fromArray(S, low, 0);
                HIGH[stage] = IntVector.fromArray(S, high, 0);
            }
        }

        /** Whether blocks can go through here: a power of two of lanes, at least 2, dividing the block. */
        static boolean usable() { return V >= 2 && Integer.bitCount(V) == 1 && BLOCK % V == 0; }

        /** A block as {@link #block} copies it: whole tiles here, the rows and columns short of a tile there. */
        static void transpose(int[] tile, Blocks b, MemorySegment src, long from, long colStride, MemorySegment dst, long to,
                              long dstRowStride, int rows, int cols) {
            int tileRows = rows / V * V, tileCols = cols / V * V;
            for (int c0 = 0; c0 < tileCols; c0 += V) {
                for (int r0 = 0; r0 < tileRows; r0 += V) tile(tile, src, from + r0 + c0 * colStride, colStride, dst, to + r0 * dstRowStride + c0, dstRowStride);
            }
            if (tileCols < cols && tileRows > 0) {
                block(b, src, from + tileCols * colStride, colStride, dst, to + tileCols, dstRowStride, tileRows, cols - tileCols);
            }
            if (tileRows < rows) block(b, src, from + tileRows, colStride, dst, to + tileRows * dstRowStride, dstRowStride, rows - tileRows, cols);
        }

        /** One V x V tile: source run c (V elements from {@code from + c * colStride}) becomes column c of the destination rows. */
        private static void tile(int[] tile, MemorySegment src, long from, long colStride, MemorySegment dst, long to, long dstRowStride) {
            int stages = LOW.length;
            for (int stage = 0, h = V / 2; stage < stages; stage += 2, h /= 4) {
                boolean fromSource = stage == 0, toDestination = stage + 2 >= stages;
                if (stage + 1 == stages) {
                    // An odd count of stages: the last one alone, on pairs (i, i + h).
                    IntVector low = LOW[stage], high = HIGH[stage];
                    for (int i = 0; i < V; i++) {
                        if ((i & h) != 0) continue;
                        IntVector a = row(fromSource, tile, src, from, colStride, i), c = row(fromSource, tile, src, from, colStride, i + h);
                        put(true, low.selectFrom(a, c), tile, dst, to, dstRowStride, i);
                        put(true, high.selectFrom(a, c), tile, dst, to, dstRowStride, i + h);
                    }
                    return;
                }
                int q = h / 2;
                IntVector low = LOW[stage], high = HIGH[stage], lowNext = LOW[stage + 1], highNext = HIGH[stage + 1];
                for (int i = 0; i < V; i++) {
                    if ((i & (h | q)) != 0) continue;
                    IntVector r0 = row(fromSource, tile, src, from, colStride, i), r1 = row(fromSource, tile, src, from, colStride, i + q),
                            r2 = row(fromSource, tile, src, from, colStride, i + h), r3 = row(fromSource, tile, src, from, colStride, i + h + q);
                    // Stage h exchanges (r0, r2) and (r1, r3); stage q then (r0, r1) and (r2, r3).
                    IntVector s0 = low.selectFrom(r0, r2), s2 = high.selectFrom(r0, r2), s1 = low.selectFrom(r1, r3), s3 = high.selectFrom(r1, r3);
                    put(toDestination, lowNext.selectFrom(s0, s1), tile, dst, to, dstRowStride, i);
                    put(toDestination, highNext.selectFrom(s0, s1), tile, dst, to, dstRowStride, i + q);
                    put(toDestination, lowNext.selectFrom(s2, s3), tile, dst, to, dstRowStride, i + h);
                    put(toDestination, highNext.selectFrom(s2, s3), tile, dst, to, dstRowStride, i + h + q);
                }
            }
        }

        /** Row {@code i} of the tile: source run i, or row i of the L1 array. */
        private static IntVector row(boolean fromSource, int[] tile, MemorySegment src, long from, long colStride, int i) {
            return fromSource ? IntVector.fromMemorySegment(S, src, (from + i * colStride) * Integer.BYTES, ORDER) : IntVector.fromArray(S, tile, i * V);
        }

        /** Stores row {@code i} of the tile: to destination row i, or to row i of the L1 array. */
        private static void put(boolean toDestination, IntVector v, int[] tile, MemorySegment dst, long to, long dstRowStride, int i) {
            if (toDestination) v.intoMemorySegment(dst, (to + i * dstRowStride) * Integer.BYTES, ORDER);
            else v.intoArray(tile, i * V);
        }
    }

    /** A block as read (column by column) and as written (row by row), arrays of the element's width. */
    private static final class Blocks {
        final int elementBytes;
        final ValueLayout layout;
        /** Made at the first partial block: whole blocks of 4-byte elements need none. */
        Object read, written;

        Blocks(int elementBytes) {
            this.elementBytes = elementBytes;
            layout = switch (elementBytes) {
                case 1 -> ValueLayout.JAVA_BYTE;
                case 2 -> ValueLayout.JAVA_SHORT_UNALIGNED;
                case 4 -> ValueLayout.JAVA_INT_UNALIGNED;
                case 8 -> ValueLayout.JAVA_LONG_UNALIGNED;
                default -> throw new IllegalArgumentException("copies elements of 1, 2, 4 or 8 bytes, not " + elementBytes);
            };
        }

        void ensureArrays() {
            if (read != null) return;
            read = array(elementBytes);
            written = array(elementBytes);
        }

        private static Object array(int elementBytes) {
            return switch (elementBytes) {
                case 1 -> new byte[BLOCK * BLOCK];
                case 2 -> new short[BLOCK * BLOCK];
                case 4 -> new int[BLOCK * BLOCK];
                default -> new long[BLOCK * BLOCK];
            };
        }

        /** {@code written[r * BLOCK + c] = read[c * BLOCK + r]}. */
        void transpose(int rows, int cols) {
            switch (read) {
                case int[] in -> {
                    int[] out = (int[]) written;
                    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) out[r * BLOCK + c] = in[c * BLOCK + r];
                }
                case long[] in -> {
                    long[] out = (long[]) written;
                    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) out[r * BLOCK + c] = in[c * BLOCK + r];
                }
                case short[] in -> {
                    short[] out = (short[]) written;
                    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) out[r * BLOCK + c] = in[c * BLOCK + r];
                }
                default -> {
                    byte[] in = (byte[]) read, out = (byte[]) written;
                    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) out[r * BLOCK + c] = in[c * BLOCK + r];
                }
            }
        }
    }
}
