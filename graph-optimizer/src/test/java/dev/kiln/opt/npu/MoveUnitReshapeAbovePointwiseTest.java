package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.opt.DeadCodeElimination;
import dev.kiln.opt.PassResult;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.GraphInterpreter;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MoveUnitReshapeAbovePointwiseTest {
    private final GraphBuilder b = new GraphBuilder();

    private ValueRef input(DType dtype, int... dims) { return b.input(new TensorMeta(dtype, Shape.of(dims))); }

    private ValueRef op(Op op, ValueRef... args) { return b.apply(op, List.of(args)).get(0); }

    private ValueRef unsqueezeLast(ValueRef v, int rows) { return op(new Op.Reshape(Shape.of(rows, 1)), v); }

    /** Rotary tables: {@code cos} and {@code sin} of {@code positions.float().unsqueeze(1) * freqs}. */
    private Graph rotaryTables() {
        ValueRef positions = input(DType.INT64, 6), freqs = input(DType.FLOAT32, 4);
        ValueRef angles = op(new Op.Binary(BinaryFn.MUL), unsqueezeLast(op(new Op.Cast(DType.FLOAT32), positions), 6), freqs);
        return b.build(List.of(op(new Op.Unary(UnaryFn.COS), angles), op(new Op.Unary(UnaryFn.SIN), angles)));
    }

    private static void assertSameBits(Graph before, Graph after, Tensor... in) {
        Tensor[] want = new GraphInterpreter(before).run(in), got = new GraphInterpreter(after).run(in);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i].meta(), got[i].meta());
            assertArrayEquals(want[i].toFloatArray(), got[i].toFloatArray(), "output " + i);
        }
    }

    @Test
    void aCastBeforeAnUnsqueezeMovesAboveItAndFusesIntoTheTablesKernel() {
        Graph g = rotaryTables();
        PassResult r = new MoveUnitReshapeAbovePointwise().run(g);
        assertEquals(List.of("%3 (reshape to [6,1]) of %2 (to_float32) moved to its operands"), r.details());
        Graph out = new DeadCodeElimination().run(r.graph()).graph();
        assertEquals("""
                value   op                      args    type
                %0      input 0                         int64[6]
                %1      input 1                         float32[4]
                %2      to_float32(to=float32)  %0      float32[6]
                %3      reshape(shape=[6,1])    %2      float32[6,1]
                %4      mul                     %3, %1  float32[6,4]
                %5      cos                     %4      float32[6,4]
                %6      sin                     %4      float32[6,4]
                return                          %5, %6
                """, g.toTable());
        assertEquals("""
                value   op                      args    type
                %0      input 0                         int64[6]
                %1      input 1                         float32[4]
                %2      reshape(shape=[6,1])    %0      int64[6,1]
                %3      to_float32(to=float32)  %2      float32[6,1]
                %4      mul                     %3, %1  float32[6,4]
                %5      cos                     %4      float32[6,4]
                %6      sin                     %4      float32[6,4]
                return                          %5, %6
                """, out.toTable());
        assertSameBits(g, out, Tensor.arange(6), Tensor.randn(1, 4));
        // Before, the cast was a kernel of its own; now the [6,1] cast is computed for every element of the tables' kernel.
        assertEquals(List.of("[%2] in (%0) out (%2)", "[%4 %5 %6] in (%3, %1) out (%5, %6)"),
                FusePointwise.groups(g).stream().map(Object::toString).toList());
        assertEquals(List.of("[%3 %4 %5 %6] in (%2, %1) out (%5, %6)"), FusePointwise.groups(out).stream().map(Object::toString).toList());
        assertEquals("no change", new MoveUnitReshapeAbovePointwise().run(out).summary(), "nothing above the reshape of an input");
    }

    @Test
    void theNpuProgramHasOneLaunchFewerAndTheSameResults() {
        Graph g = rotaryTables();
        Tensor positions = Tensor.arange(6).mul(37), freqs = Tensor.randn(2, 4);
        Tensor[] want = new GraphInterpreter(g).run(new Tensor[] {positions, freqs});
        NpuExecutable exe = new NpuGraphCompiler().compile(g, Set.of());
        KernelProgram p = exe.program();
        assertEquals(1, p.launches().stream().filter(l -> l instanceof KernelProgram.Fused).count(), p.toString());
        Tensor[] got = exe.run(new Tensor[] {positions, freqs});
        for (int i = 0; i < 2; i++) {
            float[] w = want[i].toFloatArray(), o = got[i].toFloatArray();
            for (int j = 0; j < w.length; j++) assertEquals(w[j], o[j], 2e-7f * (1 + Math.abs(w[j])), "output " + i + " element " + j);
        }
    }

    @Test
    void squeezesAndChainsMoveToTheInputsAndZeroDimensionalOperandsStay() {
        ValueRef x = input(DType.FLOAT32, 1, 5, 1), scale = input(DType.FLOAT32);
        ValueRef y = op(new Op.Binary(BinaryFn.MUL), op(new Op.Unary(UnaryFn.NEG), x), scale);          // [1,5,1] * []
        ValueRef squeezed = op(new Op.Reshape(Shape.of(5)), op(new Op.Clamp(-1, 1), y));
        Graph g = b.build(List.of(squeezed));
        Graph out = NpuGraphCompiler.pipeline(Set.of()).run(g).graph();
        assertEquals("""
                value   op                        args    type
                %0      input 0                           float32[1,5,1]
                %1      input 1                           float32[]
                %2      reshape(shape=[5])        %0      float32[5]
                %3      neg                       %2      float32[5]
                %4      mul                       %3, %1  float32[5]
                %5      clamp(min=-1.0, max=1.0)  %4      float32[5]
                return                            %5
                """, out.toTable());
        assertSameBits(g, out, Tensor.randn(3, 1, 5, 1), Tensor.scalar(-2.5, DType.FLOAT32));
    }

    @Test
    void leftAloneWhenTheValueIsReadTwiceTheReshapeMovesRealDimensionsAnOperandBroadcastsOrTheOpIsCostly() {
        ValueRef x = input(DType.FLOAT32, 4, 6), row = input(DType.FLOAT32, 6);
        ValueRef negated = op(new Op.Unary(UnaryFn.NEG), x);
        ValueRef flattened = op(new Op.Reshape(Shape.of(24)), op(new Op.Unary(UnaryFn.ABS), x));         // [4,6] -> [24]
        ValueRef broadcastInside = op(new Op.Reshape(Shape.of(1, 4, 6)), op(new Op.Binary(BinaryFn.ADD), x, row));
        ValueRef costly = op(new Op.Reshape(Shape.of(4, 1, 6)), op(new Op.Unary(UnaryFn.EXP), x));      // recomputing exp does not pay
        Graph g = b.build(List.of(op(new Op.Reshape(Shape.of(4, 1, 6)), negated), negated, flattened, broadcastInside, costly));
        PassResult r = new MoveUnitReshapeAbovePointwise().run(g);
        assertEquals("no change", r.summary(), String.join("\n", r.details()));
        assertTrue(MoveUnitReshapeAbovePointwise.sameNonUnitDims(Shape.of(1, 4, 1, 6), Shape.of(4, 6, 1)));
        assertTrue(!MoveUnitReshapeAbovePointwise.sameNonUnitDims(Shape.of(4, 6), Shape.of(6, 4)));
        assertTrue(!MoveUnitReshapeAbovePointwise.sameNonUnitDims(Shape.of(4, 6), Shape.of(24)));
        assertTrue(MoveUnitReshapeAbovePointwise.sameNonUnitDims(Shape.of(), Shape.of(1, 1)));
    }

    @Test
    void aMatmulsEpilogueIsNotCutByAReshapeMovedIntoIt() {
        // (h @ w + residual).unsqueeze(0): the add stays the matmul's epilogue.
        ValueRef h = input(DType.FLOAT32, 8, 16), w = input(DType.FLOAT32, 16, 32), residual = input(DType.FLOAT32, 8, 32);
        ValueRef sum = op(new Op.Binary(BinaryFn.ADD), op(new Op.MatMul(), h, w), residual);
        Graph g = b.build(List.of(op(new Op.Reshape(Shape.of(1, 8, 32)), sum)));
        assertEquals("no change", new MoveUnitReshapeAbovePointwise().run(g).summary());
        Graph out = NpuGraphCompiler.pipeline(Set.of()).run(g).graph();
        assertEquals(List.of("%3 [%4] in (%2 full) out %4"), FuseMatmulEpilogue.groups(out).stream().map(Object::toString).toList());
    }
}
