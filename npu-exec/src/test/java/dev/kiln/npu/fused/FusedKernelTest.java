package dev.kiln.npu.fused;

import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

public class FusedKernelTest {
    private static final TileProgram.InputSpec TILE = new TileProgram.InputSpec(DType.FLOAT32, false);
    private static final TileProgram.InputSpec SCALAR = new TileProgram.InputSpec(DType.FLOAT32, true);

    /** W1: gelu(x*a+b)*sigmoid(x)+x with 0-d a and b, as lowering emits it; shared with the code generator's tests. */
    public static TileProgram w1() {
        return new TileProgram(List.of(TILE, SCALAR, SCALAR), 1, 5, List.of(
                new TileInstr.Broadcast(1, 1),
                new TileInstr.Broadcast(2, 2),
                new TileInstr.Load(0, 0),
                new TileInstr.Binary(BinaryFn.MUL, 0, 1, 3),
                new TileInstr.Binary(BinaryFn.ADD, 3, 2, 3),
                new TileInstr.Unary(UnaryFn.GELU, 3, 3),
                new TileInstr.Unary(UnaryFn.SIGMOID, 0, 4),
                new TileInstr.Binary(BinaryFn.MUL, 3, 4, 3),
                new TileInstr.Binary(BinaryFn.ADD, 3, 0, 3),
                new TileInstr.Store(3, 0)));
    }

    @Test
    void w1IsBitIdenticalToEagerAndMovesEightBytesPerElement() {
        // Sizes around tile and vector boundaries, with a small SRAM so there are many tiles.
        NpuDevice small = new NpuDevice(64 * 1024, NpuDevice.current().vectorBits(), 2, 1e10);
        for (int n : new int[] {0, 1, 7, 17, 1000, 4099, 70_001}) {
            for (NpuDevice device : List.of(small, NpuDevice.current())) {
                Tensor x = Tensor.randn(n, n).mul(3.0);
                Tensor a = Tensor.scalar(0.75f), b = Tensor.scalar(-0.5f);
                Tensor expected = x.mul(a).add(b).gelu().mul(x.sigmoid()).add(x);
                Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(n));
                FusedKernel k = new FusedKernel("w1", w1(), device);
                long before = Dma.totalBytes();
                LaunchTraffic traffic = k.launch(new Tensor[] {x, a, b}, new Tensor[] {out});
                assertArrayEquals(expected.toFloatArray(), out.toFloatArray(), "n=" + n);
                assertEquals(4L * n + 8, traffic.bytesRead(), "reads x once and each scalar once");
                assertEquals(4L * n, traffic.bytesWritten());
                assertTrue(Dma.totalBytes() - before >= traffic.bytes());
            }
        }
    }

    @Test
    void fullTilesRunInPlaceEvenWhenTheOutputIsTheInputsMemory() {
        NpuDevice small = new NpuDevice(64 * 1024, NpuDevice.current().vectorBits(), 2, 1e10);
        int n = 70_001;
        Tensor a = Tensor.scalar(0.75f), b = Tensor.scalar(-0.5f);
        FusedKernel k = new FusedKernel("w1", w1(), small);
        assertTrue(k.tile() < n / 8, "many full tiles and a partial one");

        Tensor x = Tensor.randn(11, n).mul(3.0);
        float[] expected = x.mul(a).add(b).gelu().mul(x.sigmoid()).add(x).toFloatArray();
        LaunchTraffic t = k.launch(new Tensor[] {x, a, b}, new Tensor[] {x});
        assertArrayEquals(expected, x.toFloatArray(), "the output is the input's memory");
        assertEquals(4L * n + 8, t.bytesRead());
        assertEquals(4L * n, t.bytesWritten());
    }

    @Test
    void aBroadcastRegisterTheBodyOverwritesIsFilledAgainForEveryTile() {
        // r1 = a, then r1 = x * r1: each tile must start again from r1 = a.
        TileProgram p = new TileProgram(List.of(TILE, SCALAR), 1, 2, List.of(
                new TileInstr.Broadcast(1, 1),
                new TileInstr.Load(0, 0),
                new TileInstr.Binary(BinaryFn.MUL, 0, 1, 1),
                new TileInstr.Store(1, 0)));
        NpuDevice small = new NpuDevice(64 * 1024, NpuDevice.current().vectorBits(), 2, 1e10);
        int n = 20_000;
        Tensor x = Tensor.randn(5, n);
        for (FusedKernel.Strategy s : FusedKernel.Strategy.values()) {
            Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(n));
            FusedKernel k = new FusedKernel("overwrite", p, small, s);
            assertTrue(k.tile() < n, "several tiles");
            k.launch(new Tensor[] {x, Tensor.scalar(3f)}, new Tensor[] {out});
            assertArrayEquals(x.mul(3.0).toFloatArray(), out.toFloatArray(), s.toString());
        }
    }

    @Test
    void whereReadsBoolConditionsAsOneBytePerElement() {
        TileProgram p = new TileProgram(List.of(new TileProgram.InputSpec(DType.BOOL, false), TILE), 1, 3, List.of(
                new TileInstr.Constant(-1.5f, 2),
                new TileInstr.Load(0, 0),
                new TileInstr.Load(1, 1),
                new TileInstr.Clamp(-1f, 1f, 1, 1),
                new TileInstr.Where(0, 1, 2, 1),
                new TileInstr.Store(1, 0)));
        boolean[] c = {true, false, true, true, false};
        Tensor x = Tensor.vector(3f, 0.25f, -7f, Float.NaN, 2f);
        Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(5));
        LaunchTraffic t = new FusedKernel("where", p, NpuDevice.current()).launch(new Tensor[] {Tensor.of(c, 5), x}, new Tensor[] {out});
        assertArrayEquals(new float[] {1f, -1.5f, -1f, Float.NaN, -1.5f}, out.toFloatArray());
        assertEquals(5 + 20, t.bytesRead());
        assertEquals(20, t.bytesWritten());
    }

    /** out = where(mask, x * column + row, -x): three inputs of other shapes than the output, a bool among them. */
    private static TileProgram affineWhere() {
        return new TileProgram(List.of(TILE, TILE, TILE, new TileProgram.InputSpec(DType.BOOL, false)), 1, 4, List.of(
                new TileInstr.Load(0, 0),
                new TileInstr.Load(1, 1),
                new TileInstr.Binary(BinaryFn.MUL, 0, 1, 1),
                new TileInstr.Load(2, 2),
                new TileInstr.Binary(BinaryFn.ADD, 1, 2, 1),
                new TileInstr.Unary(UnaryFn.NEG, 0, 0),
                new TileInstr.Load(3, 3),
                new TileInstr.Where(3, 1, 0, 1),
                new TileInstr.Store(1, 0)));
    }

    @Test
    void inputsOfOtherShapesAreReadBroadcastIntoEveryTile() {
        // Tiles of the small device end inside rows (a row of 37 never divides a tile), so each tile
        // starts some way into a row of the broadcast inputs.
        NpuDevice small = new NpuDevice(64 * 1024, NpuDevice.current().vectorBits(), 2, 1e10);
        int rows = 1500, cols = 37;
        long n = (long) rows * cols;
        Tensor x = Tensor.randn(21, cols, rows).permute(1, 0);       // a view: [rows, cols], not contiguous
        Tensor column = Tensor.randn(22, rows, 1), row = Tensor.randn(23, cols);
        Tensor mask = Tensor.randn(24, 1, cols).gt(0.0);             // [1, cols] bool
        Tensor expected = Tensor.where(mask, x.mul(column).add(row), x.neg());
        for (FusedKernel.Strategy strategy : FusedKernel.Strategy.values()) {
            FusedKernel k = new FusedKernel("affine", affineWhere(), small, strategy);
            assertTrue(k.tile() % cols != 0 && k.tile() < n / 4, "tiles start inside rows: " + k.tile());
            Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(rows, cols));
            LaunchTraffic t = k.launch(new Tensor[] {x, column, row, mask}, new Tensor[] {out});
            assertArrayEquals(expected.toFloatArray(), out.toFloatArray(), strategy.name());
            // x: every element once; the column: one value per run of a row within a tile; the row and
            // the mask: their runs again for every row.
            long runs = 0;
            for (long start = 0; start < n; start += k.tile()) {
                long end = Math.min(n, start + k.tile());
                runs += (end - 1) / cols - start / cols + 1;
            }
            assertEquals(4 * n + 4 * runs + 4 * n + n, t.bytesRead(), strategy.name());
            assertEquals(4 * n, t.bytesWritten());
        }
    }

    @Test
    void aLargeTransposedInputIsCopiedInBlocksFirstAndTheCopyIsCounted() {
        // [2048, 2050] read at columns 2048 elements (8 KiB) apart: a transpose worth copying in blocks.
        int rows = 2048, cols = 2050;
        long n = (long) rows * cols;
        Tensor x = Tensor.randn(25, cols, rows).permute(1, 0);
        TileProgram negate = new TileProgram(List.of(TILE), 1, 1, List.of(
                new TileInstr.Load(0, 0), new TileInstr.Unary(UnaryFn.NEG, 0, 0), new TileInstr.Store(0, 0)));
        for (FusedKernel.Strategy strategy : FusedKernel.Strategy.values()) {
            Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(rows, cols));
            LaunchTraffic t = new FusedKernel("negate", negate, NpuDevice.current(), strategy).launch(new Tensor[] {x}, new Tensor[] {out});
            assertArrayEquals(x.neg().toFloatArray(), out.toFloatArray(), strategy.name());
            // The blocked copy reads and writes each element once, then the kernel reads the copy and writes the output.
            assertEquals(8 * n, t.bytesRead(), strategy.name());
            assertEquals(8 * n, t.bytesWritten(), strategy.name());
        }
    }

    @Test
    void textFormRoundTripsExactly() {
        TileProgram p = new TileProgram(List.of(TILE), 2, 2, List.of(
                new TileInstr.Constant(-0.0f, 1),
                new TileInstr.Load(0, 0),
                new TileInstr.Clamp(Float.NEGATIVE_INFINITY, 0.1f, 0, 0),
                new TileInstr.Binary(BinaryFn.SUB, 1, 0, 1),
                new TileInstr.Store(1, 0),
                new TileInstr.Store(0, 1)));
        for (TileProgram q : List.of(p, w1())) {
            TileProgram back = TileProgram.parse(q.toText());
            assertEquals(q, back);
            assertEquals(q.toText(), back.toText());
        }
        assertTrue(p.toText().startsWith(TileProgram.FORMAT));
    }

    @Test
    void malformedProgramsAreRejectedWithTheReason() {
        var e = assertThrows(IllegalArgumentException.class, () -> new TileProgram(List.of(TILE), 1, 2,
                List.of(new TileInstr.Load(0, 0), new TileInstr.Unary(UnaryFn.EXP, 1, 0), new TileInstr.Store(0, 0))));
        assertEquals("register r1 read before it is written: Unary[fn=EXP, src=1, dst=0]", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new TileProgram(List.of(TILE), 1, 1, List.of(new TileInstr.Load(0, 0))));
        assertEquals("output 0 is never stored", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new TileProgram(List.of(TILE), 1, 1,
                List.of(new TileInstr.Broadcast(0, 0), new TileInstr.Store(0, 0))));
        assertEquals("input 0 is not 0-d: Broadcast[input=0, dst=0]", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new TileProgram(List.of(TILE), 1, 1,
                List.of(new TileInstr.Load(0, 0), new TileInstr.Binary(BinaryFn.LT, 0, 0, 0), new TileInstr.Store(0, 0))));
        assertTrue(e.getMessage().startsWith("not a float32 op"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TileProgram.parse(TileProgram.FORMAT + "\ninput float32 tile\nfrobnicate 1"));
        assertEquals("tile program line 3 'frobnicate 1': unknown instruction frobnicate", e.getMessage());
    }

    @Test
    void launchChecksOperands() {
        FusedKernel k = new FusedKernel("w1", w1(), NpuDevice.current());
        Tensor x = Tensor.zeros(4, 3);
        Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(4, 3));
        var e = assertThrows(KilnException.class, () -> k.launch(new Tensor[] {x.permute(1, 0), Tensor.scalar(1f), Tensor.scalar(2f)},
                new Tensor[] {out}));
        assertEquals("w1: input 0 must be float32 of a shape that broadcasts to the output shape [4,3], or contiguous with 12 elements, "
                + "got float32[3,4] (not contiguous)", e.getMessage());
        e = assertThrows(KilnException.class, () -> k.launch(new Tensor[] {x}, new Tensor[] {out}));
        assertEquals("w1: expects 3 inputs and 1 outputs, got 1 and 1", e.getMessage());
    }

    @Test
    void tilesFitSram() {
        NpuDevice d = new NpuDevice(64 * 1024, 256, 2, 1e10);
        int tile = FusedKernel.tileFor(5, d);
        assertTrue(tile > 0 && 5L * tile * 4 <= d.sramBytesPerCore(), "tile " + tile);
        assertEquals(0, FusedKernel.tileFor(10_000, d));
        TileProgram wide = new TileProgram(List.of(TILE), 1, 10_000, List.of(new TileInstr.Load(0, 0), new TileInstr.Store(0, 0)));
        var e = assertThrows(KilnException.class, () -> new FusedKernel("big", wide, d, FusedKernel.Strategy.PRIMITIVES));
        assertEquals("big: a tile program of 10000 registers does not fit 65536 bytes of SRAM", e.getMessage());
        // Generated, only the input and the output occupy SRAM, whatever the register count.
        int generatedTile = new FusedKernel("big", wide, d, FusedKernel.Strategy.GENERATED).tile();
        assertTrue(generatedTile >= dev.kiln.npu.kernels.TileKernels.QUANTUM && 2L * generatedTile * Float.BYTES <= d.sramBytesPerCore(),
                "tile " + generatedTile);
    }
}
