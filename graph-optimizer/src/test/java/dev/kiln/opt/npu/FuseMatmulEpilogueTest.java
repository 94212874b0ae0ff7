package dev.kiln.opt.npu;

import dev.kiln.Fn1;
import dev.kiln.Fn3;
import dev.kiln.Kiln;
import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.nn.F;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FuseMatmulEpilogueTest {
    private final GraphBuilder b = new GraphBuilder();

    private ValueRef input(DType t, int... dims) { return b.input(new TensorMeta(t, Shape.of(dims))); }

    private ValueRef input(int... dims) { return input(DType.FLOAT32, dims); }

    private ValueRef op(Op op, ValueRef... args) { return b.apply(op, List.of(args)).get(0); }

    private ValueRef matmul(ValueRef x, ValueRef y) { return op(new Op.MatMul(), x, y); }

    private ValueRef add(ValueRef x, ValueRef y) { return op(new Op.Binary(BinaryFn.ADD), x, y); }

    private ValueRef unary(UnaryFn fn, ValueRef x) { return op(new Op.Unary(fn), x); }

    private static List<String> listing(Graph g) { return FuseMatmulEpilogue.groups(g).stream().map(Object::toString).toList(); }

    /** The W2 MLP: gelu(x @ w1 + b1) @ w2 + b2. */
    static Graph mlp(GraphBuilder b, int rows, int model, int hidden) {
        ValueRef x = b.input(new TensorMeta(DType.FLOAT32, Shape.of(rows, model)));                   // %0
        ValueRef w1 = b.input(new TensorMeta(DType.FLOAT32, Shape.of(model, hidden)));                // %1
        ValueRef h = b.apply(new Op.MatMul(), List.of(x, w1)).get(0);                                   // %2
        ValueRef b1 = b.input(new TensorMeta(DType.FLOAT32, Shape.of(hidden)));                       // %3
        h = b.apply(new Op.Binary(BinaryFn.ADD), List.of(h, b1)).get(0);                               // %4
        h = b.apply(new Op.Unary(UnaryFn.GELU), List.of(h)).get(0);                                    // %5
        ValueRef w2 = b.input(new TensorMeta(DType.FLOAT32, Shape.of(hidden, model)));                // %6
        ValueRef y = b.apply(new Op.MatMul(), List.of(h, w2)).get(0);                                   // %7
        ValueRef b2 = b.input(new TensorMeta(DType.FLOAT32, Shape.of(model)));                        // %8
        y = b.apply(new Op.Binary(BinaryFn.ADD), List.of(y, b2)).get(0);                               // %9
        return b.build(List.of(y));
    }

    @Test
    void theMlpsBiasesAndActivationJoinTheirMatmuls() {
        Graph g = mlp(b, 8, 16, 32);
        // Before: FusePointwise alone makes each bias add (its row read broadcast) and what follows a kernel after its matmul.
        assertEquals(List.of("[%4 %5] in (%2, %3) out (%5)", "[%9] in (%7, %8) out (%9)"),
                FusePointwise.groups(g).stream().map(Object::toString).toList());
        assertEquals(List.of("%2 [%4 %5] in (%3 row) out %5", "%7 [%9] in (%8 row) out %9"), listing(g));
        KernelProgram p = new NpuGraphCompiler().lower(g);
        assertEquals(List.of("MatMulFused", "MatMulFused"), p.launches().stream().map(l -> l.getClass().getSimpleName()).toList(), p.toText());
    }

    @Test
    void linearLayersWithALeadingBatchOfOneAndResidualsAndScalarsFuse() {
        ValueRef x = input(1, 5, 12);                                                    // %0
        ValueRef w = input(7, 12);                                                       // %1
        ValueRef wt = op(new Op.Permute(List.of(1, 0)), w);                              // %2
        ValueRef y = matmul(x, wt);                                                      // %3 [1,5,7]
        ValueRef bias = input(1, 1, 7);                                                  // %4
        ValueRef s = add(y, bias);                                                       // %5
        ValueRef half = input(DType.FLOAT32);                                            // %6 0-d
        ValueRef t = op(new Op.Binary(BinaryFn.MUL), s, half);                           // %7
        ValueRef res = input(1, 5, 7);                                                   // %8
        ValueRef u = add(res, t);                                                        // %9 the chain value second
        ValueRef v = op(new Op.Clamp(-1, 1), unary(UnaryFn.SILU, u));                    // %10 %11
        Graph g = b.build(List.of(v));
        assertEquals(List.of("%3 [%5 %7 %9 %10 %11] in (%4 row, %6 scalar, %8 full) out %11"), listing(g));
    }

    @Test
    void operandsBroadcastTheWrongWayOrNotFloat32StopTheChain() {
        ValueRef x = input(4, 6), w = input(6, 8);                                       // %0 %1
        ValueRef column = input(4, 1);                                                   // %2
        ValueRef y = matmul(x, w);                                                       // %3
        ValueRef r = unary(UnaryFn.RELU, y);                                             // %4 fuses
        ValueRef c = add(r, column);                                                     // %5 [4,1] broadcasts along rows: stops
        ValueRef y2 = matmul(x, w);                                                      // %6
        ValueRef batch = input(3, 4, 8);                                                 // %7
        ValueRef big = add(y2, batch);                                                   // %8 the result outgrows the product: no
        ValueRef y3 = matmul(x, w);                                                      // %9
        ValueRef wide = op(new Op.Cast(DType.FLOAT64), y3);                              // %10 not float32: no
        ValueRef x64 = input(DType.FLOAT64, 4, 6), w64 = input(DType.FLOAT64, 6, 8);    // %11 %12
        ValueRef y4 = matmul(x64, w64);                                                  // %13 float64 matmul: no
        ValueRef t4 = unary(UnaryFn.TANH, y4);                                           // %14
        ValueRef y5 = matmul(x, w);                                                      // %15
        ValueRef gt = op(new Op.BinaryScalar(BinaryFn.GT, 0, false, false), y5);         // %16 bool: no
        ValueRef y6 = matmul(x, w);                                                      // %17
        ValueRef bias64 = input(DType.FLOAT64, 8);                                       // %18
        ValueRef mixed = add(y6, bias64);                                                // %19 promotes to float64: no
        Graph g = b.build(List.of(c, big, wide, t4, gt, mixed));
        assertEquals(List.of("%3 [%4] in () out %4"), listing(g));
    }

    @Test
    void valuesUsedOutsideTheChainEndIt() {
        ValueRef x = input(4, 6), w = input(6, 8), bias = input(8);                      // %0 %1 %2
        ValueRef y = matmul(x, w);                                                       // %3
        ValueRef r = unary(UnaryFn.RELU, add(y, bias));                                  // %4 %5
        ValueRef total = op(new Op.Reduce(ReduceFn.SUM, List.of(1), true), r);           // %6 a second user of %5
        ValueRef scaled = op(new Op.Binary(BinaryFn.MUL), r, total);                     // %7 its operand comes from the chain: stays out
        ValueRef y2 = matmul(x, input(6, 8));                                            // %8 %9 returned itself: nothing fuses
        ValueRef e2 = unary(UnaryFn.EXP, y2);                                            // %10
        ValueRef y3 = matmul(x, input(6, 8));                                            // %11 %12 two users: nothing fuses
        ValueRef e3 = op(new Op.Binary(BinaryFn.MUL), unary(UnaryFn.EXP, y3), unary(UnaryFn.SIGMOID, y3)); // %13 %14 %15
        Graph g = b.build(List.of(scaled, y2, e2, e3));
        assertEquals(List.of("%3 [%4 %5] in (%2 row) out %5"), listing(g));
        // The pointwise groups leave the claimed nodes alone and take the rest (%7 reads the [4,1] sum broadcast).
        KernelProgram p = new NpuGraphCompiler().lower(g);
        assertEquals(List.of("MatMulFused", "Eager", "Fused", "Eager", "Fused", "Eager", "Fused"),
                p.launches().stream().map(l -> l.getClass().getSimpleName()).toList(), p.toText());
        Tensor[] in = {Tensor.randn(1, 4, 6), Tensor.randn(2, 6, 8), Tensor.randn(3, 8), Tensor.randn(4, 6, 8), Tensor.randn(5, 6, 8)};
        Tensor[] got = new NpuGraphCompiler().compile(g).run(in);
        Tensor rr = in[0].matmul(in[1]).add(in[2]).relu(), y22 = in[0].matmul(in[3]), y33 = in[0].matmul(in[4]);
        Tensor[] want = {rr.mul(rr.sum(1, true)), y22, y22.exp(), y33.exp().mul(y33.sigmoid())};
        for (int i = 0; i < want.length; i++) assertArrayEquals(want[i].toFloatArray(), got[i].toFloatArray(), "output " + i);
    }

    @Test
    void twoProductsMeetingInOneOpFuseItIntoTheFirstOnly() {
        // A gated unit: silu(x @ wg) * (x @ wu). The multiply could end either chain; it joins one.
        ValueRef x = input(6, 10), wg = input(10, 16), wu = input(10, 16);             // %0 %1 %2
        ValueRef gate = matmul(x, wg);                                                   // %3
        ValueRef up = matmul(x, wu);                                                     // %4
        ValueRef h = op(new Op.Binary(BinaryFn.MUL), unary(UnaryFn.SILU, gate), up);    // %5 %6
        Graph g = b.build(List.of(h));
        assertEquals(List.of("%3 [%5 %6] in (%4 full) out %6"), listing(g));
        KernelProgram p = new NpuGraphCompiler().lower(g);
        assertEquals(List.of("Eager", "MatMulFused"), p.launches().stream().map(l -> l.getClass().getSimpleName()).toList(), p.toText());
        Tensor[] in = {Tensor.randn(1, 6, 10), Tensor.randn(2, 10, 16), Tensor.randn(3, 10, 16)};
        Tensor want = in[0].matmul(in[1]).silu().mul(in[0].matmul(in[2]));
        assertArrayEquals(want.toFloatArray(), new NpuGraphCompiler().compile(g).run(in)[0].toFloatArray());
    }

    @Test
    void matmulLaunchesRoundTripThroughTextAndBadTextIsRefused() {
        ValueRef x = input(1, 5, 12), w = input(7, 12);
        ValueRef y = matmul(x, op(new Op.Permute(List.of(1, 0)), w));
        ValueRef out = op(new Op.Clamp(-1, 1), add(input(1, 5, 7), op(new Op.BinaryScalar(BinaryFn.MUL, 0.5, false, false),
                unary(UnaryFn.GELU_TANH, add(y, input(7))))));
        Graph g = b.build(List.of(out));
        KernelProgram p = new NpuGraphCompiler().lower(g);
        String text = p.toText();
        assertTrue(text.contains("\nmatmul matmul_add_gelutanh_mul_clamp_3 [1,5,7] 0,2,5,4 > 10 acc,row,full "), text);
        KernelProgram back = KernelProgram.parse(text);
        assertEquals(p, back);
        assertEquals(text, back.toText());
        IllegalArgumentException sources = assertThrows(IllegalArgumentException.class,
                () -> KernelProgram.parse(text.replace("acc,row,full", "acc,column,full")));
        assertTrue(sources.getMessage().contains("unknown epilogue source 'column'"), sources.getMessage());
        IllegalArgumentException slots = assertThrows(IllegalArgumentException.class,
                () -> KernelProgram.parse(text.replace("0,2,5,4 > 10", "0,2,5 > 10")));
        assertTrue(slots.getMessage().contains("reads 4 slots"), slots.getMessage());
        // The text ends two lines into the epilogue's program, which says it has more.
        int header = text.indexOf("\nmatmul ") + 1;
        String[] rest = text.substring(header).split("\n");
        String cut = text.substring(0, header) + rest[0] + "\n" + rest[1] + "\n" + rest[2] + "\n";
        IllegalArgumentException shortBody = assertThrows(IllegalArgumentException.class, () -> KernelProgram.parse(cut));
        assertTrue(shortBody.getMessage().contains("the epilogue program is cut short"), shortBody.getMessage());
    }

    @Test
    void w2LikeMlpsCompiledMatchEagerBitForBitAndRunToRun() {
        Tensor w1 = Tensor.randn(3, 96, 200).mul(0.1), b1 = Tensor.randn(4, 200).mul(0.1);
        Tensor w2 = Tensor.randn(5, 200, 96).mul(0.07), b2 = Tensor.randn(6, 96).mul(0.1);
        Fn1<Tensor> mlp = in -> F.gelu(in.matmul(w1).add(b1)).matmul(w2).add(b2);
        Fn1<Tensor> compiled = Kiln.compile(mlp, NpuBackendTest.NPU);
        for (int rows : new int[] {1, 5, 64, 70}) {
            Tensor x = Tensor.randn(rows, rows, 96);
            float[] want = mlp.apply(x).toFloatArray();
            float[] first = compiled.apply(x).toFloatArray();
            assertArrayEquals(want, first, "rows " + rows);
            assertArrayEquals(first, compiled.apply(x).toFloatArray(), "rows " + rows + ", second run");
        }
        String explained = Kiln.explain(compiled, Tensor.randn(9, 64, 96)).toString();
        assertTrue(explained.contains("matmul matmul_add_gelu_2 with an epilogue"), explained);
    }

    @Test
    void linearLayersCompiledMatchEager() {
        Tensor w = Tensor.randn(1, 24, 40), bias = Tensor.randn(2, 24);
        Fn3<Tensor> block = (x, res, scale) -> F.linear(x, w, bias).silu().mul(scale).add(res);
        Fn3<Tensor> compiled = Kiln.compile(block, NpuBackendTest.NPU);
        Tensor x = Tensor.randn(3, 1, 50, 40), res = Tensor.randn(4, 1, 50, 24), scale = Tensor.scalar(0.5f);
        assertArrayEquals(block.apply(x, res, scale).toFloatArray(), compiled.apply(x, res, scale).toFloatArray());
        String explained = Kiln.explain(compiled, x, res, scale).toString();
        assertTrue(explained.contains("with an epilogue"), explained);
    }
}
