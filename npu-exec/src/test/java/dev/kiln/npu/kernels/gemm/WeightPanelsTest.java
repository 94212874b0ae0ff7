package dev.kiln.npu.kernels.gemm;

import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.npu.kernels.MatMul;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A call site that keeps its right operand packed: the same bits as packing per call, at
 * any size; panels only for an operand that comes back unchanged; a marked write, another
 * tensor or another view of the same memory is never served the old panels.
 */
class WeightPanelsTest {

    private static Tensor matrix(int rows, int cols, long seed, Presentation p) {
        return TestTensors.tensor(TestTensors.randomData((long) rows * cols, seed, 2, false), DType.FLOAT32, p, rows, cols);
    }

    /** a @ b packed per call, the reference every kept-panel product must equal bit for bit. */
    private static float[] packedPerCall(Tensor a, Tensor b) {
        return a.matmul(b).toFloatArray();
    }

    private static float[] atSite(WeightPanels site, Tensor a, Tensor b) {
        Tensor out = Tensor.empty(DType.FLOAT32, a.matmul(b).shape());
        MatMul.matmul(a, b, site, out);
        return out.toFloatArray();
    }

    @Property(tries = 40)
    void keptPanelsGiveTheBitsOfPackingPerCall(@ForAll @IntRange(min = 17, max = 300) int m, @ForAll @IntRange(min = 1, max = 1100) int k,
                                               @ForAll @IntRange(min = 1, max = 200) int n, @ForAll boolean transposed,
                                               @ForAll @IntRange(min = 1, max = 3) int batch, @ForAll long seed) {
        // Sizes across vector widths, 48-column panels, K slices of 512 and the workers' column and row splits.
        Tensor a = TestTensors.tensor(TestTensors.randomData((long) batch * m * k, seed, 2, false), DType.FLOAT32, Presentation.CONTIGUOUS,
                batch, m, k);
        Tensor b = transposed ? matrix(n, k, seed + 1, Presentation.CONTIGUOUS).mT() : matrix(k, n, seed + 1, Presentation.CONTIGUOUS);
        float[] want = packedPerCall(a, b);
        WeightPanels site = new WeightPanels(new WeightPanels.Budget(Long.MAX_VALUE));
        for (int call = 0; call < 3; call++) {
            assertArrayEquals(want, atSite(site, a, b), "call " + call + ": [" + batch + "," + m + "," + k + "] @ [" + k + "," + n + "]"
                    + (transposed ? " (transposed)" : ""));
        }
        // A single column goes to the unpacked kernels, which read B in place.
        if (n > 1) assertTrue(site.bytes() >= (long) k * n * Float.BYTES, "the panels are kept: " + site.bytes() + " B");
        else assertEquals(0, site.bytes());
    }

    @Property(tries = 15)
    void anEpilogueReadsKeptPanelsToo(@ForAll @IntRange(min = 17, max = 200) int m, @ForAll @IntRange(min = 1, max = 700) int k,
                                      @ForAll @IntRange(min = 1, max = 150) int n, @ForAll long seed) {
        Epilogue biasRelu = new Epilogue(new TileProgram(List.of(new TileProgram.InputSpec(DType.FLOAT32, false),
                new TileProgram.InputSpec(DType.FLOAT32, false)), 1, 2, List.of(new TileInstr.Load(0, 0), new TileInstr.Load(1, 1),
                new TileInstr.Binary(BinaryFn.ADD, 0, 1, 0), new TileInstr.Unary(UnaryFn.RELU, 0, 0), new TileInstr.Store(0, 0))),
                List.of(Epilogue.Source.ACCUMULATOR, Epilogue.Source.ROW));
        Tensor a = matrix(m, k, seed, Presentation.CONTIGUOUS), w = matrix(n, k, seed + 1, Presentation.CONTIGUOUS);
        Tensor bias = TestTensors.tensor(TestTensors.randomData(n, seed + 2, 1, false), DType.FLOAT32, n);
        float[] want = a.matmul(w.mT()).add(bias).relu().toFloatArray();
        WeightPanels site = new WeightPanels(new WeightPanels.Budget(Long.MAX_VALUE));
        for (int call = 0; call < 3; call++) {
            Tensor out = Tensor.empty(DType.FLOAT32, dev.kiln.tensor.Shape.of(m, n));
            MatMul.matmul(a, w.mT(), site, out, biasRelu, bias);
            assertArrayEquals(want, out.toFloatArray(), "call " + call);
        }
        assertEquals(n > 1, site.bytes() > 0);
    }

    @Test
    void aMarkedWriteIntoTheOperandIsSeen() {
        Tensor a = matrix(64, 96, 1, Presentation.CONTIGUOUS), w = matrix(80, 96, 2, Presentation.CONTIGUOUS);
        WeightPanels site = new WeightPanels();
        atSite(site, a, w.mT());
        atSite(site, a, w.mT());
        assertTrue(site.bytes() > 0);
        // The way a KV cache is written: into the memory in place, then marked.
        float[] fresh = matrix(80, 96, 3, Presentation.CONTIGUOUS).toFloatArray();
        java.lang.foreign.MemorySegment.copy(fresh, 0, w.storage().segment(), ValueLayout.JAVA_FLOAT, 0, fresh.length);
        w.storage().markWritten();
        Tensor same = Tensor.of(fresh, 80, 96);
        for (int call = 0; call < 3; call++) assertArrayEquals(packedPerCall(a, same.mT()), atSite(site, a, w.mT()), "call " + call);
        assertTrue(site.bytes() > 0, "packed again for the new values");
    }

    @Test
    void anotherTensorOrAnotherViewOfTheSameMemoryGetsItsOwnPanels() {
        Tensor a = matrix(40, 64, 4, Presentation.CONTIGUOUS);
        Tensor w1 = matrix(96, 64, 5, Presentation.CONTIGUOUS), w2 = matrix(96, 64, 6, Presentation.CONTIGUOUS);
        WeightPanels site = new WeightPanels();
        for (Tensor b : List.of(w1.mT(), w1.mT(), w2.mT(), w1.mT(), w1.mT(), w1.mT())) {
            assertArrayEquals(packedPerCall(a, b), atSite(site, a, b));
        }
        // Rows 0..47 and 48..95 of w1: the same storage and strides at another offset.
        Tensor top = w1.slice(0, 0, 48, 1).mT(), bottom = w1.slice(0, 48, 96, 1).mT();
        for (Tensor b : List.of(top, top, top, bottom, bottom, top)) assertArrayEquals(packedPerCall(a, b), atSite(site, a, b));
    }

    @Test
    void anOperandThatChangesEveryCallHoldsNoPanels() {
        Tensor a = matrix(40, 64, 7, Presentation.CONTIGUOUS);
        WeightPanels site = new WeightPanels();
        for (int call = 0; call < 4; call++) {
            Tensor b = matrix(64, 50, 8 + call, Presentation.CONTIGUOUS);
            assertArrayEquals(packedPerCall(a, b), atSite(site, a, b));
            assertEquals(0, site.bytes(), "call " + call);
        }
    }

    @Test
    void fewRowsAreLeftToTheUnpackedKernels() {
        Tensor a = matrix(4, 64, 9, Presentation.CONTIGUOUS), w = matrix(70, 64, 10, Presentation.CONTIGUOUS);
        WeightPanels site = new WeightPanels();
        for (int call = 0; call < 3; call++) assertArrayEquals(packedPerCall(a, w.mT()), atSite(site, a, w.mT()));
        assertEquals(0, site.bytes(), "a decoding product reads its weight in place");
    }

    /**
     * A few rows against a weight strided in both dimensions: the unpacked kernels decline it,
     * and the workers split the columns at multiples of the vector width, so a worker's first
     * panel starts inside a packed one.
     */
    @Test
    void fewRowsOfAStridedWeightSplitThePackedPanelsBetweenWorkers() {
        // Large enough to run on two workers; 170 columns split at 80, inside the second 48-column panel.
        Tensor a = matrix(12, 300, 16, Presentation.CONTIGUOUS);
        Tensor strided = matrix(600, 2 * 170, 17, Presentation.CONTIGUOUS).slice(0, 0, 600, 2).slice(1, 0, 2 * 170, 2);
        WeightPanels site = new WeightPanels();
        for (int call = 0; call < 3; call++) assertArrayEquals(packedPerCall(a, strided), atSite(site, a, strided), "call " + call);
        assertTrue(site.bytes() > 0);
    }

    @Test
    void batchedOperandsArePackedOnlyWhenEveryEntryReadsTheSameMatrix() {
        Tensor a = TestTensors.tensor(TestTensors.randomData(3L * 30 * 20, 11, 2, false), DType.FLOAT32, 3, 30, 20);
        Tensor distinct = TestTensors.tensor(TestTensors.randomData(3L * 20 * 60, 12, 2, false), DType.FLOAT32, 3, 20, 60);
        WeightPanels site = new WeightPanels();
        for (int call = 0; call < 3; call++) assertArrayEquals(packedPerCall(a, distinct), atSite(site, a, distinct));
        assertEquals(0, site.bytes(), "three different matrices");

        Tensor shared = matrix(20, 60, 13, Presentation.CONTIGUOUS).reshape(1, 20, 60).expand(3, 20, 60);
        WeightPanels broadcast = new WeightPanels();
        for (int call = 0; call < 3; call++) assertArrayEquals(packedPerCall(a, shared), atSite(broadcast, a, shared));
        assertTrue(broadcast.bytes() > 0, "one matrix broadcast over the batch");
    }

    @Test
    void theBudgetCapsWhatTheSitesHold() {
        Tensor a = matrix(64, 128, 14, Presentation.CONTIGUOUS), w = matrix(96, 128, 15, Presentation.CONTIGUOUS);
        long panelBytes = 128L * 96 * Float.BYTES;
        WeightPanels.Budget budget = new WeightPanels.Budget(panelBytes);
        WeightPanels first = new WeightPanels(budget), second = new WeightPanels(budget);
        for (int call = 0; call < 3; call++) {
            assertArrayEquals(packedPerCall(a, w.mT()), atSite(first, a, w.mT()));
            assertArrayEquals(packedPerCall(a, w.mT()), atSite(second, a, w.mT()));
        }
        assertEquals(panelBytes, first.bytes());
        assertEquals(0, second.bytes(), "over the budget: packed per call");
        assertEquals(panelBytes, budget.held());
    }
}
