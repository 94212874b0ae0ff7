package dev.kiln.opt.npu;

import dev.kiln.Fn1;
import dev.kiln.Fn2;
import dev.kiln.Kiln;
import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.SizeTemplate;
import dev.kiln.ir.ValueRef;
import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Storage;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

import static dev.kiln.nn.F.linear;
import static dev.kiln.nn.F.rmsNorm;
import static dev.kiln.nn.F.rotaryEmbedding;
import static dev.kiln.nn.F.rotaryTables;
import static dev.kiln.nn.F.scaledDotProductAttention;
import static dev.kiln.nn.F.silu;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Memory transfers as launches of the kernel program: where lowering puts them, what they cost, where they live. */
class TransferTest {
    private static final NpuDevice DEVICE = NpuDevice.current();

    private static TensorMeta f32(long... dims) { return new TensorMeta(DType.FLOAT32, Shape.of(dims)); }

    private static ValueRef op(GraphBuilder b, Op op, ValueRef... in) { return b.apply(op, List.of(in)).get(0); }

    private static Op plus1() { return new Op.BinaryScalar(BinaryFn.ADD, 1.0, false, false); }

    /** {@code gelu(view(x)) + 1} for x of {@code shape}. */
    private static Graph geluOfView(Shape shape, Function<ValueRef, Op> view) {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(new TensorMeta(DType.FLOAT32, shape));
        ValueRef v = op(b, view.apply(x), x);
        return b.build(List.of(op(b, plus1(), op(b, new Op.Unary(UnaryFn.GELU), v))));
    }

    /** {@code gelu(view(x)) + 1} for x of {@code shape}, through several views. */
    private static Graph geluOfViews(Shape shape, Op... views) {
        GraphBuilder b = new GraphBuilder();
        ValueRef v = b.input(new TensorMeta(DType.FLOAT32, shape));
        for (Op view : views) v = op(b, view, v);
        return b.build(List.of(op(b, plus1(), op(b, new Op.Unary(UnaryFn.GELU), v))));
    }

    /** {@code x @ w + r.T}: x [m,8], w [8,n], r [n,m]; the epilogue's operand is a transposed view. */
    private static Graph matmulPlusTransposed(long m, long n) {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(m, 8)), w = b.input(f32(8, n)), r = b.input(f32(n, m));
        return b.build(List.of(op(b, new Op.Binary(BinaryFn.ADD), op(b, new Op.MatMul(), x, w), op(b, new Op.Permute(List.of(1, 0)), r))));
    }

    private static List<KernelProgram.Transfer> transfers(KernelProgram p) {
        return p.launches().stream().filter(l -> l instanceof KernelProgram.Transfer).map(l -> (KernelProgram.Transfer) l).toList();
    }

    private static int[] bits(Tensor t) {
        float[] f = t.toFloatArray();
        int[] b = new int[f.length];
        for (int i = 0; i < f.length; i++) b[i] = Float.floatToRawIntBits(f[i]);
        return b;
    }

    private static long aligned(long bytes) { return (bytes + Storage.ALIGNMENT - 1) / Storage.ALIGNMENT * Storage.ALIGNMENT; }

    @Test
    void aTransposeFeedingAFusedKernelIsReadThroughItsStrides() {
        KernelProgram p = Lowering.lower(geluOfView(Shape.of(5, 7), x -> new Op.Permute(List.of(1, 0))), DEVICE);
        assertEquals(0, p.transfers(), p.toText());
        KernelProgram.Fused fused = (KernelProgram.Fused) p.launches().getLast();
        assertEquals(List.of(1), fused.in(), "the permute's own slot: " + p.toText());
    }

    @Test
    void viewsFeedingAFusedKernelNeedNoTransfer() {
        List<Function<ValueRef, Op>> views = List.of(
                x -> new Op.Reshape(Shape.of(7, 6)),           // a reshape of a contiguous value
                x -> new Op.Slice(0, 1, 1, 4),                 // a block of rows
                x -> new Op.Permute(List.of(0, 1)),            // the identity permutation
                x -> new Op.Slice(1, 0, 2, 3),                 // every other column
                x -> new Op.Slice(0, 5, -1, 6),                // rows reversed
                x -> new Op.Expand(Shape.of(3, 6, 7)));        // a broadcast
        Tensor x = Tensor.randn(9, 6, 7);
        for (Function<ValueRef, Op> view : views) {
            Graph g = geluOfView(Shape.of(6, 7), view);
            KernelProgram p = Lowering.lower(g, DEVICE);
            assertEquals(0, p.transfers(), p.toText());
            Op viewOp = view.apply(null);
            Tensor viewed = dev.kiln.ops.Dispatch.apply1(viewOp, x);
            assertArrayEquals(bits(viewed.gelu().add(1.0)), bits(new NpuExecutable(p, DEVICE).run(new Tensor[] {x})[0]), viewOp.toString());
        }
    }

    @Test
    void aTransposedViewIsReadOnceByTheKernelsDma() {
        // Enough elements for the kernel to split across workers; no dimension a multiple of the vector width.
        int m = 123, n = 301;
        KernelProgram p = Lowering.lower(geluOfView(Shape.of(m, n), x -> new Op.Permute(List.of(1, 0))), DEVICE);
        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        Tensor x = Tensor.randn(7, m, n).mul(3.0);
        int[] want = bits(x.permute(1, 0).gelu().add(1.0));
        assertArrayEquals(want, bits(exe.run(new Tensor[] {x})[0]));
        long before = Dma.totalBytes();
        assertArrayEquals(want, bits(exe.run(new Tensor[] {x})[0]));
        long bytes = 4L * m * n;
        // The kernel gathers the view's elements into its tiles and writes the result: no copy in between.
        assertEquals(2 * bytes, Dma.totalBytes() - before);
        List<LaunchTraffic> traffic = exe.lastRunTraffic();
        assertEquals(1, traffic.size(), traffic.toString());
        assertEquals(bytes, traffic.getFirst().bytesRead());
        assertEquals(bytes, traffic.getFirst().bytesWritten());
        String d = exe.describe();
        assertTrue(d.contains("npu program: 2 launches, 1 fused (compiled)"), d);
    }

    @Test
    void aLargeTransposeIsCopiedInBlocksFirstAndTheLaunchCountsTheCopy() {
        // 16.8 MB read at columns 8 KiB apart: the fused launch copies it in blocks (TransposedCopy), then reads the copy.
        int m = 2050, n = 2048;
        KernelProgram p = Lowering.lower(geluOfView(Shape.of(m, n), x -> new Op.Permute(List.of(1, 0))), DEVICE);
        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        Tensor x = Tensor.randn(8, m, n);
        assertArrayEquals(bits(x.permute(1, 0).gelu().add(1.0)), bits(exe.run(new Tensor[] {x})[0]));
        long bytes = 4L * m * n;
        LaunchTraffic t = exe.lastRunTraffic().getFirst();
        assertEquals(2 * bytes, t.bytesRead(), "the copy's reads, then the kernel's");
        assertEquals(2 * bytes, t.bytesWritten(), "the copy's writes, then the kernel's");
    }

    @Test
    void transfersGatherEveryDtypeAndLayout() {
        // A fused kernel may read bool; a view before a reshape may be of any dtype. Negative and zero strides too.
        for (DType type : List.of(DType.FLOAT32, DType.BOOL, DType.INT64, DType.FLOAT16, DType.INT32)) {
            Tensor base = Tensor.randn(11, 3, 4, 5, 6).mul(10).to(type);
            List<Tensor> views = List.of(base.permute(2, 0, 3, 1), base.slice(2, 4, -7, -2).transpose(0, 1),
                    base.slice(1, 0, 1).expand(3, 4, 5, 6).slice(1, 0, 4, 2), base.select(1, 3).unsqueeze(0).expand(2, 3, 5, 6));
            for (Tensor v : views) {
                Tensor out = Tensor.empty(type, v.shape());
                LaunchTraffic t = dev.kiln.npu.fused.ViewTransfer.run("transfer", v, out);
                Tensor want = v.contiguous();
                assertArrayEquals(want.to(DType.FLOAT64).toDoubleArray(), out.to(DType.FLOAT64).toDoubleArray(), type + " " + v.layout());
                assertEquals(v.numel() * type.byteSize(), t.bytesRead());
                assertEquals(v.numel() * type.byteSize(), t.bytesWritten());
            }
        }
        Tensor x = Tensor.randn(1, 4, 3);
        var e = assertThrows(dev.kiln.tensor.KilnException.class,
                () -> dev.kiln.npu.fused.ViewTransfer.run("transfer", x.permute(1, 0), Tensor.empty(DType.FLOAT32, Shape.of(4, 3))));
        assertTrue(e.getMessage().contains("transfer of float32[3,4] needs a contiguous buffer of that type and shape, got float32[4,3]"), e.getMessage());
    }

    @Test
    void aViewThatCannotBeTakenReadsATransferAndStaysAView() {
        // reshape(transpose(x)) cannot be a view of x: the transfer makes the reshape a view of its arena buffer.
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(4, 6));
        ValueRef s = op(b, new Op.Softmax(1, false), x);
        ValueRef flat = op(b, new Op.Reshape(Shape.of(24)), op(b, new Op.Permute(List.of(1, 0)), s));
        KernelProgram p = Lowering.lower(b.build(List.of(op(b, new Op.Unary(UnaryFn.EXP), flat))), DEVICE);
        assertEquals(1, p.transfers(), p.toText());
        int at = p.launches().indexOf(transfers(p).getFirst());
        KernelProgram.Eager reshape = (KernelProgram.Eager) p.launches().get(at + 1);
        assertTrue(reshape.op() instanceof Op.Reshape, p.toText());
        assertEquals(transfers(p).getFirst().out(), reshape.in());
        MemoryPlan plan = MemoryPlan.of(p, List.of(f32(4, 6)));
        int gathered = reshape.in().getFirst();
        assertEquals(MemoryPlan.Placement.ARENA, plan.placement(gathered));
        assertEquals(MemoryPlan.Placement.VIEW, plan.placement(reshape.out().getFirst()));
        assertEquals(gathered, plan.base(reshape.out().getFirst()));

        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        Tensor in = Tensor.randn(2, 4, 6);
        assertArrayEquals(bits(in.softmax(1).permute(1, 0).reshape(24).exp()), bits(exe.run(new Tensor[] {in})[0]));
        assertTrue(exe.describe().contains("  launch " + (at + 1) + ": eager reshape, ") && exe.describe().contains("no DRAM traffic (a view)"),
                exe.describe());
    }

    @Test
    void oneTransferServesEveryReaderOfAView() {
        // Two products with the same transposed residual in their epilogues: it is gathered once.
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(5, 8)), w1 = b.input(f32(8, 6)), w2 = b.input(f32(8, 6)), r = b.input(f32(6, 5));
        ValueRef rt = op(b, new Op.Permute(List.of(1, 0)), r);
        ValueRef a = op(b, new Op.Binary(BinaryFn.ADD), op(b, new Op.MatMul(), x, w1), rt);
        ValueRef c = op(b, new Op.Binary(BinaryFn.ADD), op(b, new Op.MatMul(), x, w2), rt);
        KernelProgram p = Lowering.lower(b.build(List.of(a, c)), DEVICE);
        assertEquals(1, p.transfers(), p.toText());
        int gathered = transfers(p).getFirst().out().getFirst();
        assertEquals(2, p.launches().stream().filter(l -> l instanceof KernelProgram.MatMulFused && l.in().contains(gathered)).count(), p.toText());
        Tensor xs = Tensor.randn(1, 5, 8), w1s = Tensor.randn(2, 8, 6), w2s = Tensor.randn(3, 8, 6), rs = Tensor.randn(4, 6, 5);
        Tensor[] got = new NpuExecutable(p, DEVICE).run(new Tensor[] {xs, w1s, w2s, rs});
        assertArrayEquals(bits(xs.matmul(w1s).add(rs.permute(1, 0))), bits(got[0]));
        assertArrayEquals(bits(xs.matmul(w2s).add(rs.permute(1, 0))), bits(got[1]));
    }

    @Test
    void aTransfersBufferIsPlannedInTheArena() {
        // x.T.reshape(n*n) -> gelu -> reshape(n,n) -> softmax -> .T.reshape(n*n) -> exp (returned): each reshape of a
        // transpose reads a transfer of 16x16 floats, which lives in the arena and is a view's base there.
        int n = 16;
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(n, n));
        ValueRef flat = op(b, new Op.Reshape(Shape.of(n * n)), op(b, new Op.Permute(List.of(1, 0)), x));
        ValueRef s = op(b, new Op.Softmax(1, false), op(b, new Op.Reshape(Shape.of(n, n)), op(b, new Op.Unary(UnaryFn.GELU), flat)));
        ValueRef c = op(b, new Op.Unary(UnaryFn.EXP), op(b, new Op.Reshape(Shape.of(n * n)), op(b, new Op.Permute(List.of(1, 0)), s)));
        KernelProgram p = Lowering.lower(b.build(List.of(c)), DEVICE);
        List<KernelProgram.Transfer> t = transfers(p);
        assertEquals(2, t.size(), p.toText());
        MemoryPlan plan = MemoryPlan.of(p, List.of(f32(n, n)));
        for (KernelProgram.Transfer tr : t) assertEquals(MemoryPlan.Placement.ARENA, plan.placement(tr.out().getFirst()), plan.toString());
        long bytes = aligned(4L * n * n);
        // Two buffers at once at most (a transfer and the value it is read into, or softmax's input and result).
        assertEquals(2 * bytes, plan.arenaBytes(), plan.toString());
        assertEquals(4 * bytes, plan.naiveBytes(), plan.toString());

        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        Tensor in = Tensor.randn(5, n, n);
        int[] want = bits(in.permute(1, 0).reshape(n * n).gelu().reshape(n, n).softmax(1).permute(1, 0).reshape(n * n).exp());
        assertArrayEquals(want, bits(exe.run(new Tensor[] {in})[0]));
        assertArrayEquals(want, bits(exe.run(new Tensor[] {in})[0]), "a second run over the same arena");
    }

    @Test
    void theTextFormRoundTripsATransferAndRefusesABadOne() {
        KernelProgram p = Lowering.lower(geluOfViews(Shape.of(3, 9), new Op.Slice(1, 8, -2, 4), new Op.Reshape(Shape.of(12))), DEVICE);
        assertEquals(1, p.transfers(), p.toText());
        KernelProgram back = KernelProgram.parse(p.toText());
        assertEquals(p, back);
        assertEquals(p.toText(), back.toText());
        KernelProgram bools = new KernelProgram(2, List.of(0), List.of(new KernelProgram.Transfer(Shape.of(2, 3), DType.BOOL, List.of(0), List.of(1))),
                List.of(1));
        assertTrue(bools.toText().contains("\ntransfer bool [2,3] 0 > 1\n"), bools.toText());
        assertEquals(bools, KernelProgram.parse(bools.toText()));

        String header = KernelProgram.FORMAT + "\nslots 2\ninputs 0\n";
        var e = assertThrows(IllegalArgumentException.class, () -> KernelProgram.parse(header + "transfer float32 [2,3] 0 1\noutputs 1\n"));
        assertEquals("kernel program line 4 'transfer float32 [2,3] 0 1': expected 'dtype shape in > out'", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KernelProgram.parse(header + "transfer float99 [2,3] 0 > 1\noutputs 1\n"));
        assertTrue(e.getMessage().contains("unknown dtype 'float99'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KernelProgram.parse(header + "transfer float32 [2,3] 0,0 > 1\noutputs 1\n"));
        assertTrue(e.getMessage().endsWith("a transfer reads one slot and writes one, got [0, 0] > [1]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MemoryPlan.of(bools, List.of(f32(2, 3))));
        assertEquals("a transfer of bool[2,3] is given float32[2,3]", e.getMessage());
    }

    @Test
    void epilogueOperandsThatAreViewsAreGatheredTheMatmulsAreNot() {
        // x @ w.T + bias[::2] + r.T: the GEMM reads the transposed weight in place; the row and full operands are gathered.
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(5, 8)), w = b.input(f32(6, 8)), bias = b.input(f32(12)), r = b.input(f32(6, 5));
        ValueRef t = op(b, new Op.MatMul(), x, op(b, new Op.Permute(List.of(1, 0)), w));
        t = op(b, new Op.Binary(BinaryFn.ADD), t, op(b, new Op.Slice(0, 0, 2, 6), bias));
        t = op(b, new Op.Binary(BinaryFn.ADD), t, op(b, new Op.Permute(List.of(1, 0)), r));
        KernelProgram p = Lowering.lower(b.build(List.of(t)), DEVICE);
        KernelProgram.MatMulFused mm = p.launches().stream().filter(l -> l instanceof KernelProgram.MatMulFused)
                .map(l -> (KernelProgram.MatMulFused) l).findFirst().orElseThrow(() -> new AssertionError(p.toText()));
        List<KernelProgram.Transfer> gathered = transfers(p);
        assertEquals(2, gathered.size(), p.toText());
        assertEquals(List.of(Shape.of(6), Shape.of(5, 6)), gathered.stream().map(KernelProgram.Transfer::shape).toList());
        for (KernelProgram.Transfer g : gathered) assertTrue(mm.in().subList(2, mm.in().size()).contains(g.out().getFirst()), p.toText());

        Tensor xs = Tensor.randn(1, 5, 8), ws = Tensor.randn(2, 6, 8), bs = Tensor.randn(3, 12), rs = Tensor.randn(4, 6, 5);
        int[] want = bits(xs.matmul(ws.permute(1, 0)).add(bs.slice(0, 0, 12, 2)).add(rs.permute(1, 0)));
        assertArrayEquals(want, bits(new NpuExecutable(p, DEVICE).run(new Tensor[] {xs, ws, bs, rs})[0]));
    }

    @Test
    void aCallersNonContiguousInputIsReadThroughItsStridesOrGatheredWhereAViewNeedsIt() {
        // Lowering takes the graph's inputs to be contiguous; a program cached for the same shapes may be given a transpose.
        GraphBuilder b = new GraphBuilder();
        ValueRef in = b.input(f32(7, 5));
        KernelProgram p = Lowering.lower(b.build(List.of(op(b, plus1(), op(b, new Op.Unary(UnaryFn.GELU), in)))), DEVICE);
        assertEquals(List.of(KernelProgram.Fused.class), p.launches().stream().map(Object::getClass).toList());
        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        Tensor x = Tensor.randn(3, 5, 7).permute(1, 0);
        assertArrayEquals(bits(x.gelu().add(1.0)), bits(exe.run(new Tensor[] {x})[0]));
        String d = exe.describe();
        assertTrue(!d.contains("gathering"), d);
        NpuExecutable.LaunchCost fused = exe.lastRunCosts().getLast();
        assertEquals(140, fused.dmaRead(), "the kernel reads the transpose into its tiles");
        assertEquals(140, fused.dmaWritten());
        assertEquals(0, fused.callerGathered());

        // Nor can a reshape view it: it is gathered first too.
        KernelProgram reshaped = Lowering.lower(geluOfView(Shape.of(7, 5), v -> new Op.Reshape(Shape.of(5, 7))), DEVICE);
        assertEquals(0, reshaped.transfers());
        NpuExecutable exe2 = new NpuExecutable(reshaped, DEVICE);
        assertArrayEquals(bits(x.reshape(5, 7).gelu().add(1.0)), bits(exe2.run(new Tensor[] {x})[0]));
        String line = exe2.describe().lines().filter(l -> l.contains("launch 0: ")).findFirst().orElseThrow();
        assertTrue(line.startsWith("  launch 0: eager reshape, ")
                && line.endsWith("DRAM read 140 B, written 140 B (DMA count, 280 B of it gathering a non-contiguous input)"), line);

        // Compiled: the same function called with a transposed input gets eager's bits.
        Fn1<Tensor> fn = t -> t.mul(2.0).gelu().add(1.0);
        Fn1<Tensor> compiled = Kiln.compile(fn, NpuBackendTest.NPU);
        Tensor y = Tensor.randn(4, 9, 6);
        assertArrayEquals(bits(fn.apply(y)), bits(compiled.apply(y)));
        assertArrayEquals(bits(fn.apply(y.permute(1, 0).contiguous())), bits(compiled.apply(y.permute(1, 0).contiguous())));
        Tensor transposed = Tensor.randn(5, 6, 9).permute(1, 0);
        assertArrayEquals(bits(fn.apply(transposed)), bits(compiled.apply(transposed)));
    }

    @Test
    void aCallersNonContiguousEpilogueOperandIsGatheredAndCountedByTheMatmulLaunch() {
        // x @ w + r: the program takes r to be contiguous; called with a transposed r, the launch gathers it by DMA.
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(5, 8)), w = b.input(f32(8, 6)), r = b.input(f32(5, 6));
        KernelProgram p = Lowering.lower(b.build(List.of(op(b, new Op.Binary(BinaryFn.ADD), op(b, new Op.MatMul(), x, w), r))), DEVICE);
        assertEquals(List.of(KernelProgram.MatMulFused.class), p.launches().stream().map(Object::getClass).toList(), p.toText());
        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        Tensor xs = Tensor.randn(1, 5, 8), ws = Tensor.randn(2, 8, 6), rs = Tensor.randn(3, 6, 5).permute(1, 0);
        assertArrayEquals(bits(xs.matmul(ws).add(rs)), bits(exe.run(new Tensor[] {xs, ws, rs})[0]));
        NpuExecutable.LaunchCost mm = exe.lastRunCosts().getFirst();
        assertEquals(2 * 5 * 6 * Float.BYTES, mm.callerGathered(), "read and written once");
        assertEquals(5 * 6 * Float.BYTES, mm.dmaRead());
        assertEquals(5 * 6 * Float.BYTES, mm.dmaWritten());
        String d = exe.describe();
        assertTrue(d.contains("240 B of it gathering a non-contiguous input"), d);

        // A transposed left or right operand is read in place by the GEMM: nothing is gathered.
        assertArrayEquals(bits(xs.matmul(ws.permute(1, 0).contiguous().permute(1, 0)).add(rs.contiguous())),
                bits(exe.run(new Tensor[] {xs, ws.permute(1, 0).contiguous().permute(1, 0), rs.contiguous()})[0]));
        assertEquals(0, exe.lastRunCosts().getFirst().callerGathered());
    }

    /** {@code p} without its one transfer, the transfer's reader reading the view itself. */
    private static KernelProgram withoutTheTransfer(KernelProgram p) {
        KernelProgram.Transfer t = transfers(p).getFirst();
        List<KernelProgram.Launch> without = new ArrayList<>();
        for (KernelProgram.Launch l : p.launches()) {
            if (l == t) continue;
            List<Integer> in = l.in().stream().map(s -> s.equals(t.out().getFirst()) ? t.in().getFirst() : s).toList();
            without.add(switch (l) {
                case KernelProgram.MatMulFused m -> new KernelProgram.MatMulFused(m.name(), m.shape(), m.epilogue(), in, m.out());
                case KernelProgram.Eager e -> new KernelProgram.Eager(e.op(), in, e.out());
                default -> l;
            });
        }
        return new KernelProgram(p.slots(), p.inputs(), without, p.outputs());
    }

    @Test
    void aNonContiguousIntermediateReachingAnEpilogueOrAViewWithoutATransferIsABug() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(5, 8)), w = b.input(f32(8, 6)), r = b.input(f32(6, 5));
        ValueRef v = op(b, new Op.Permute(List.of(1, 0)), op(b, new Op.Softmax(1, false), r));
        KernelProgram epilogue = withoutTheTransfer(Lowering.lower(b.build(List.of(op(b, new Op.Binary(BinaryFn.ADD), op(b, new Op.MatMul(), x, w), v))),
                DEVICE));
        var e = assertThrows(IllegalStateException.class, () -> new NpuExecutable(epilogue, DEVICE)
                .run(new Tensor[] {Tensor.randn(1, 5, 8), Tensor.randn(2, 8, 6), Tensor.randn(3, 6, 5)}));
        assertTrue(e.getMessage().matches("matmul_add_\\d+ \\(launch \\d\\) is given a non-contiguous input 2 Layout\\[5,6\\] strides=\\[1, 5\\] offset=0"
                + " without a transfer before it"), e.getMessage());

        b = new GraphBuilder();
        ValueRef y = b.input(f32(4, 6));
        ValueRef u = op(b, new Op.Permute(List.of(1, 0)), op(b, new Op.Softmax(1, false), y));
        KernelProgram view = withoutTheTransfer(Lowering.lower(b.build(List.of(op(b, new Op.Reshape(Shape.of(24)), u))), DEVICE));
        e = assertThrows(IllegalStateException.class, () -> new NpuExecutable(view, DEVICE).run(new Tensor[] {Tensor.randn(1, 4, 6)}));
        assertEquals("launch 2 (reshape) cannot view its input Layout[6,4] strides=[1, 6] offset=0 without a transfer before it", e.getMessage());
    }

    @Test
    void aFamilyTreatsTheTransfersShapeAsSizes() {
        long[] base = {6, 10};
        List<Graph> graphs = SizeTemplate.samplePoints(base).stream().map(pt -> matmulPlusTransposed(pt[0], pt[1])).toList();
        List<KernelProgram> programs = graphs.stream().map(g -> Lowering.lower(g, DEVICE)).toList();
        ProgramFamily family = ProgramFamily.fit(programs, graphs.stream().map(Graph::inputMetas).toList(), base).orElseThrow();
        KernelProgram at = family.at(new long[] {13, 3});
        assertEquals(Lowering.lower(matmulPlusTransposed(13, 3), DEVICE), at);
        assertEquals(Shape.of(13, 3), transfers(at).getFirst().shape());

        NpuExecutable exe = new NpuExecutable(family, DEVICE, "compiled", "");
        for (int[] size : new int[][] {{13, 3}, {2, 40}, {6, 10}}) {
            Tensor xs = Tensor.randn(size[0], size[0], 8), ws = Tensor.randn(2, 8, size[1]), rs = Tensor.randn(3, size[1], size[0]);
            assertArrayEquals(bits(xs.matmul(ws).add(rs.permute(1, 0))), bits(exe.run(new Tensor[] {xs, ws, rs})[0]),
                    "size " + size[0] + "x" + size[1]);
            assertEquals(4L * size[0] * size[1], exe.lastRunTraffic().getFirst().bytesWritten(), "the transfer's bytes");
        }
    }

    /**
     * Random chains of views (transposes, strided and reversed slices, broadcasts, reshapes)
     * feeding a fused chain: lowering's layouts are the run's, so the transfers are exactly
     * those the views need (a reshape that cannot view its input); results are eager's bits;
     * the DMA moves each transfer's bytes twice, and the kernel reads the last view through its
     * strides (one element per run of a row where it is broadcast along the row) and writes once.
     */
    @Property(tries = 120)
    void randomViewChainsGetExactlyTheTransfersTheyNeed(@ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] dims = new int[2 + r.nextInt(2)];
        for (int d = 0; d < dims.length; d++) dims[d] = 1 + r.nextInt(6);
        GraphBuilder b = new GraphBuilder();
        ValueRef v = b.input(new TensorMeta(DType.FLOAT32, Shape.of(dims)));
        Tensor x = Tensor.randn(seed, dims).mul(2.0), t = x;
        int needed = 0;
        StringBuilder steps = new StringBuilder(Shape.of(dims).toString());
        for (int i = 0, count = 1 + r.nextInt(3); i < count; i++) {
            int[] s = t.shape().dims();
            Op.ViewOp view = switch (r.nextInt(5)) {
                case 0 -> {
                    List<Integer> perm = new ArrayList<>();
                    for (int d = 0; d < s.length; d++) perm.add(d);
                    java.util.Collections.shuffle(perm, new java.util.Random(r.nextLong()));
                    yield new Op.Permute(perm);
                }
                case 1 -> {
                    int d = r.nextInt(s.length), step = List.of(1, 2, -1).get(r.nextInt(3));
                    long start = step > 0 ? r.nextInt(s[d]) : s[d] - 1 - r.nextInt(s[d]);
                    int room = (int) (step > 0 ? (s[d] - start + step - 1) / step : start + 1);
                    yield new Op.Slice(d, start, step, 1 + r.nextInt(room));
                }
                case 2 -> {
                    int[] to = new int[s.length + 1];
                    to[0] = 1 + r.nextInt(3);
                    System.arraycopy(s, 0, to, 1, s.length);
                    yield new Op.Expand(Shape.of(to));
                }
                case 3 -> new Op.Reshape(Shape.of(t.numel()));
                default -> {
                    int[] rev = new int[s.length];
                    for (int d = 0; d < s.length; d++) rev[d] = s[s.length - 1 - d];
                    yield new Op.Reshape(Shape.of(rev));
                }
            };
            if (view.view(t.layout()) == null) needed++;
            steps.append(" -> ").append(view);
            v = op(b, view, v);
            t = dev.kiln.ops.Dispatch.apply1(view, t);
        }
        ValueRef out = op(b, new Op.Binary(BinaryFn.MUL), op(b, plus1(), op(b, new Op.Unary(UnaryFn.GELU), v)), v);
        KernelProgram p = Lowering.lower(b.build(List.of(out)), DEVICE);
        String why = steps + "\n" + p.toText();
        assertEquals(needed, p.transfers(), why);
        assertEquals(1, p.fusedLaunches(), why);

        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        int[] want = bits(t.gelu().add(1.0).mul(t));
        assertArrayEquals(want, bits(exe.run(new Tensor[] {x})[0]), why);
        long before = Dma.totalBytes();
        assertArrayEquals(want, bits(exe.run(new Tensor[] {x})[0]), why);
        long transferred = transfers(p).stream().mapToLong(tr -> 2 * tr.bytes()).sum();
        long n = t.numel();
        int[] shape = t.shape().dims();
        int row = shape[shape.length - 1];
        long[] strides = dev.kiln.npu.StridedIndex.broadcastStrides(t.layout(), t.shape());
        long kernelReads = 4 * n;
        if (!t.isContiguous() && strides[strides.length - 1] == 0 && row > 1) {
            KernelProgram.Fused f = (KernelProgram.Fused) p.launches().stream().filter(l -> l instanceof KernelProgram.Fused).findFirst().orElseThrow();
            int tile = new dev.kiln.npu.fused.FusedKernel("k", f.program(), DEVICE).tile();
            long runs = 0;
            for (long start = 0; start < n; start += tile) runs += (Math.min(n, start + tile) - 1) / row - start / row + 1;
            kernelReads = 4 * runs;
        }
        assertEquals(transferred + kernelReads + 4 * n, Dma.totalBytes() - before, why);
    }

    /**
     * A LLaMA-style decoder block as samples' DecoderBlock writes it, at small sizes: the
     * attention output's transpose feeds the output projection's reshape, so it is gathered;
     * the rest is read in place.
     */
    @Test
    void aDecoderBlockNeedsNoTransfer() {
        int d = 32, heads = 4, kvHeads = 2, headDim = 8, hidden = 48, batch = 2, seq = 5;
        Tensor wq = Tensor.randn(1, heads * headDim, d).mul(0.2), wk = Tensor.randn(2, kvHeads * headDim, d).mul(0.2),
                wv = Tensor.randn(3, kvHeads * headDim, d).mul(0.2), wo = Tensor.randn(4, d, heads * headDim).mul(0.2),
                wGate = Tensor.randn(5, hidden, d).mul(0.2), wUp = Tensor.randn(6, hidden, d).mul(0.2), wDown = Tensor.randn(7, d, hidden).mul(0.2),
                gain = Tensor.ones(d);
        int[] norm = {d};
        Fn2<Tensor> block = (x, positions) -> {
            Tensor h = rmsNorm(x, norm, gain, 1e-5);
            Tensor q = linear(h, wq, null).reshape(batch, seq, heads, headDim).transpose(1, 2);
            Tensor k = linear(h, wk, null).reshape(batch, seq, kvHeads, headDim).transpose(1, 2);
            Tensor v = linear(h, wv, null).reshape(batch, seq, kvHeads, headDim).transpose(1, 2);
            Tensor[] cs = rotaryTables(positions, headDim, 10_000);
            q = rotaryEmbedding(q, cs[0], cs[1], false);
            k = rotaryEmbedding(k, cs[0], cs[1], false);
            Tensor o = scaledDotProductAttention(q, k, v, null, true, null, true);
            Tensor a = x.add(linear(o.transpose(1, 2).reshape(batch, seq, heads * headDim), wo, null));
            Tensor m = rmsNorm(a, norm, gain, 1e-5);
            return a.add(linear(silu(linear(m, wGate, null)).mul(linear(m, wUp, null)), wDown, null));
        };
        Fn2<Tensor> compiled = Kiln.compile(block, NpuBackendTest.NPU);
        Tensor x = Tensor.randn(8, batch, seq, d), positions = Tensor.arange(seq);
        assertArrayEquals(block.apply(x, positions).toFloatArray(), compiled.apply(x, positions).toFloatArray(), 2e-5f);
        String explain = Kiln.explain(compiled, x, positions).toString();
        // The rotary embedding and attention read the heads' views in place, and attention writes its output with the
        // heads behind the queries, where the output projection reads it (the transpose before the reshape folded into it).
        assertFalse(explain.contains("transfer"), explain);
        assertTrue(explain.lines().anyMatch(l -> l.contains(": eager attention")), explain);
    }
}
