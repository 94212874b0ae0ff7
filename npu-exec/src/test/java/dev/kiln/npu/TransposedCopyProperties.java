package dev.kiln.npu;

import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.npu.fused.ViewTransfer;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Blocked copies of transposed views, bit for bit against reading each element where the view's strides put it. */
class TransposedCopyProperties {
    /** {@code [batch..., cols, rows + pad]} sliced to {@code rows} from {@code offset} and transposed: rows at stride 1, columns at {@code rows + pad}. */
    record Case(int[] batch, int rows, int cols, int pad, int offset, DType dtype, int split) {
        Tensor view() {
            int rank = batch.length + 2;
            int[] dims = Arrays.copyOf(batch, rank);
            dims[rank - 2] = cols;
            dims[rank - 1] = rows + pad;
            Tensor base = Tensor.randn(rows * 31L + cols, dims).mul(100);
            base = dtype == DType.BOOL ? base.gt(0) : base.to(dtype);
            return base.slice(rank - 1, offset, offset + rows).transpose(rank - 2, rank - 1);
        }
    }

    @Provide
    Arbitrary<Case> cases() {
        Arbitrary<int[]> batch = Arbitraries.integers().between(1, 3).array(int[].class).ofMinSize(0).ofMaxSize(2);
        // Sizes around the block (64) and the band (512 rows or columns) and their edges.
        Arbitrary<Integer> sizes = Arbitraries.oneOf(Arbitraries.integers().between(2, 140), Arbitraries.of(63, 64, 65, 127, 128, 129, 511, 513));
        Arbitrary<DType> dtypes = Arbitraries.of(DType.FLOAT32, DType.INT32, DType.FLOAT16, DType.BFLOAT16, DType.FLOAT64, DType.INT64, DType.BOOL);
        return Combinators.combine(batch, sizes, sizes, Arbitraries.integers().between(0, 3), Arbitraries.integers().between(0, 3), dtypes,
                Arbitraries.integers().between(0, 100)).as((b, rows, cols, pad, offset, dtype, split) -> {
            // Short columns are merged or not worth blocking: keep the column stride at the threshold or above.
            int r = Math.max(rows, (int) TransposedCopy.MIN_COLUMN_STRIDE);
            return new Case(b, r, cols, offset > pad ? offset : pad, offset, dtype, split);
        });
    }

    @Property(tries = 150)
    void copiesATransposedViewBitForBitInAnySplitOfItsBands(@ForAll("cases") Case c) {
        Tensor view = c.view();
        TransposedCopy.Plan plan = TransposedCopy.plan(view);
        assertNotNull(plan, () -> "a transpose with columns " + view.strides()[view.strides().length - 1] + " elements apart: " + view.layout());
        MemorySegment dst = Tensor.empty(view.dtype(), view.shape()).storage().segment();
        // Two calls over a split of the bands, as workers take them.
        long bands = TransposedCopy.bands(plan), split = c.split() * bands / 100;
        long copied = TransposedCopy.copy(plan, 0, split, view.storage().segment(), dst, 0)
                + TransposedCopy.copy(plan, split, bands, view.storage().segment(), dst, 0);
        assertEquals(view.numel(), copied);
        assertArrayEquals(elementBytes(view), dst.toArray(ValueLayout.JAVA_BYTE), () -> view.dtype() + " " + view.layout());
    }

    @Property(tries = 60)
    void contiguousCopiesAndTransfersOfTransposesMatchTheViewsElements(@ForAll("cases") Case c) {
        Tensor view = c.view();
        byte[] want = elementBytes(view);
        assertArrayEquals(want, view.contiguous().storage().segment().toArray(ValueLayout.JAVA_BYTE), "eager contiguous");
        Tensor out = Tensor.empty(view.dtype(), view.shape());
        LaunchTraffic t = ViewTransfer.run("transfer", view, out);
        assertArrayEquals(want, out.storage().segment().toArray(ValueLayout.JAVA_BYTE), "transfer");
        // Every element read once and written once, as the DMA engine counts it.
        long bytes = view.numel() * view.dtype().byteSize();
        assertEquals(bytes, t.bytesRead());
        assertEquals(bytes, t.bytesWritten());
    }

    @Test
    void largeTransposesAreCopiedInBlocksByContiguousCopiesAndTransfers() {
        // 16.8 MB with columns 8 KiB apart: blocks pay; batched, with a partial block at the end of each row.
        Tensor view = Tensor.randn(5, 2, 1025, 2048).transpose(1, 2);
        TransposedCopy.Plan p = TransposedCopy.payingPlan(view);
        assertNotNull(p);
        assertEquals(List.of(2048, 1025), List.of(p.rows(), p.cols()));
        byte[] want = elementBytes(view);
        assertArrayEquals(want, view.contiguous().storage().segment().toArray(ValueLayout.JAVA_BYTE), "eager contiguous");
        Tensor out = Tensor.empty(view.dtype(), view.shape());
        LaunchTraffic t = ViewTransfer.run("transfer", view, out);
        assertArrayEquals(want, out.storage().segment().toArray(ValueLayout.JAVA_BYTE), "transfer");
        assertEquals(view.numel() * 4, t.bytesRead());
        assertEquals(view.numel() * 4, t.bytesWritten());

        // Columns walked backwards (a negative step): the same blocks, from the other end.
        Tensor reversed = Tensor.randn(9, 700, 1024).slice(0, 699, -701, -1).transpose(0, 1);
        TransposedCopy.Plan back = TransposedCopy.payingPlan(reversed);
        assertNotNull(back);
        assertEquals(-1024, back.colStride());
        assertArrayEquals(elementBytes(reversed), reversed.contiguous().storage().segment().toArray(ValueLayout.JAVA_BYTE), "reversed columns");

        // Columns a multiple of 2 KiB apart pay from 1 MiB; others only from 32 MiB.
        assertNotNull(TransposedCopy.payingPlan(Tensor.randn(5, 256, 1024).transpose(0, 1)), "1 MiB, columns 4 KiB apart");
        assertNull(TransposedCopy.payingPlan(Tensor.randn(5, 128, 1024).transpose(0, 1)), "512 KiB");
        assertNotNull(TransposedCopy.payingPlan(Tensor.randn(7, 2048, 512).transpose(0, 1)), "4 MiB, columns 2 KiB apart");
        assertNull(TransposedCopy.payingPlan(Tensor.randn(7, 4096, 256).transpose(0, 1)), "4 MiB, columns 1 KiB apart");
        assertNull(TransposedCopy.payingPlan(Tensor.randn(6, 1024, 3000).transpose(0, 1)), "12.3 MB, columns 12000 bytes apart");
        assertNotNull(TransposedCopy.payingPlan(Tensor.randn(6, 3000, 3000).transpose(0, 1)), "36 MB, columns 12000 bytes apart");
        assertNotNull(TransposedCopy.payingPlan(Tensor.randn(6, 9000, 1000).transpose(0, 1)), "36 MB, columns 4000 bytes apart");
    }

    @Test
    void viewsThatAreNotTransposesOrHaveShortColumnsAreNotPlanned() {
        Tensor x = Tensor.randn(1, 100, 200);
        assertNull(TransposedCopy.plan(x), "contiguous");
        assertNull(TransposedCopy.plan(x.slice(1, 0, 200, 2)), "a strided slice: its rows do not run contiguously");
        assertNull(TransposedCopy.plan(Tensor.randn(2, 20, 40).transpose(0, 1)), "columns 40 elements apart");
        assertNull(TransposedCopy.plan(Tensor.randn(3, 1, 100).transpose(0, 1)), "one column: a contiguous run");
        TransposedCopy.Plan p = TransposedCopy.plan(Tensor.randn(4, 3, 100, 200).permute(0, 2, 1));
        assertNotNull(p);
        assertArrayEquals(new int[] {3}, p.batchDims());
        assertArrayEquals(new long[] {20_000}, p.batchStrides());
        assertEquals(List.of(200, 100, 200L, 4), List.of(p.rows(), p.cols(), p.colStride(), p.elementBytes()));
        assertEquals(3L * 200 * 100, p.elements());
    }

    /**
     * The vector transposition at the other widths its stages take shape at, in child JVMs whose
     * preferred species is narrower ({@code -XX:MaxVectorSize}): 2 lanes (one stage, source to
     * destination), 4 (one pair of stages), 8 (a pair, then a last stage on its own); this JVM's
     * 16 lanes (two pairs) are the properties above.
     */
    @Test
    void transposesTilesAtEveryVectorWidth() throws IOException, InterruptedException {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        for (int bytes : new int[] {8, 16, 32}) {
            Path log = Files.createTempFile("kiln-transpose", ".log");
            Process p = new ProcessBuilder(List.of(javaBin, "--add-modules", "jdk.incubator.vector", "-XX:MaxVectorSize=" + bytes,
                    "-cp", System.getProperty("java.class.path"), AtThisWidth.class.getName()))
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the child JVM did not finish in time");
            String out = Files.readString(log);
            Files.deleteIfExists(log);
            assertEquals(0, p.exitValue(), out);
            assertTrue(out.contains("ok with " + bytes / Integer.BYTES + " lanes"), out);
        }
    }

    /** The child of {@link #transposesTilesAtEveryVectorWidth}: whole and partial tiles of 4-byte elements, bit for bit. */
    public static final class AtThisWidth {
        public static void main(String[] args) {
            int lanes = TransposedCopy.IntTiles.V;
            for (int rows : new int[] {64, 67, 130}) {
                for (int cols : new int[] {2, 5, 16, 64, 65, 99}) {
                    for (DType dtype : new DType[] {DType.FLOAT32, DType.INT32}) {
                        Case c = new Case(new int[] {2}, rows, cols, 3, 1, dtype, 50);
                        Tensor view = c.view();
                        TransposedCopy.Plan plan = TransposedCopy.plan(view);
                        MemorySegment dst = Tensor.empty(view.dtype(), view.shape()).storage().segment();
                        TransposedCopy.copy(plan, 0, TransposedCopy.bands(plan), view.storage().segment(), dst, 0);
                        if (!Arrays.equals(elementBytes(view), dst.toArray(ValueLayout.JAVA_BYTE))) {
                            throw new AssertionError(lanes + " lanes: " + dtype + " " + rows + " x " + cols + " differs");
                        }
                    }
                }
            }
            System.out.println("ok with " + lanes + " lanes");
        }
    }

    /** The view's elements in row-major order, each read from where its strides put it. */
    private static byte[] elementBytes(Tensor view) {
        int bytes = view.dtype().byteSize();
        int[] dims = view.shape().dims();
        long[] strides = view.strides();
        MemorySegment src = view.storage().segment();
        byte[] out = new byte[Math.toIntExact(view.numel() * bytes)];
        for (long i = 0; i < view.numel(); i++) {
            long at = StridedIndex.offset(dims, strides, view.layout().offset(), i) * bytes;
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, at, out, (int) i * bytes, bytes);
        }
        return out;
    }
}
