package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
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

class MergeSiblingMatmulsTest {
    private final GraphBuilder b = new GraphBuilder();

    private ValueRef input(int... dims) { return b.input(new TensorMeta(DType.FLOAT32, Shape.of(dims))); }

    private ValueRef op(Op op, ValueRef... args) { return b.apply(op, List.of(args)).get(0); }

    private ValueRef linear(ValueRef x, ValueRef w) { return op(new Op.MatMul(), x, op(new Op.Permute(List.of(1, 0)), w)); }

    private static long count(Graph g, Class<?> op) {
        return g.nodes().stream().filter(n -> n instanceof Node.Apply ap && op.isInstance(ap.op())).count();
    }

    private static Tensor[] inputs(Graph g) {
        return g.inputMetas().stream().map(m -> Tensor.randn(m.shape().numel(), m.shape().dims())).toArray(Tensor[]::new);
    }

    @Test
    void frozenQkvProjectionsBecomeOneProductAndItsSlicesWithTheSameBits() {
        ValueRef x = input(1, 6, 32), wq = input(32, 32), wk = input(8, 32), wv = input(8, 32);
        Graph g = b.build(List.of(linear(x, wq), linear(x, wk), linear(x, wv)));
        Set<Integer> frozen = Set.of(1, 2, 3);
        Graph out = NpuGraphCompiler.pipeline(frozen).run(g).graph();
        assertEquals(1, count(out, Op.MatMul.class), out.toTable());
        assertEquals(1, count(out, Op.Concat.class), out.toTable());
        assertEquals(3, count(out, Op.Slice.class), out.toTable());
        Tensor[] in = inputs(g);
        Tensor[] before = new GraphInterpreter(g).run(in), after = new GraphInterpreter(out).run(in);
        for (int i = 0; i < 3; i++) assertArrayEquals(before[i].toFloatArray(), after[i].toFloatArray(), "output " + i);
        // Frozen weights are read in their transposed form (another summation order): equal to rounding.
        NpuExecutable exe = new NpuGraphCompiler().compile(g, frozen);
        for (int call = 0; call < 3; call++) {
            Tensor[] compiled = exe.run(in);
            for (int i = 0; i < 3; i++) {
                float[] want = before[i].toFloatArray(), got = compiled[i].toFloatArray();
                for (int j = 0; j < want.length; j++) assertEquals(want[j], got[j], 1e-5 * (1 + Math.abs(want[j])), "compiled output " + i);
            }
        }
    }

    @Test
    void projectionsOfTheCallersWeightsStaySeparate() {
        ValueRef x = input(1, 6, 32), wq = input(32, 32), wk = input(8, 32), wv = input(8, 32);
        Graph g = b.build(List.of(linear(x, wq), linear(x, wk), linear(x, wv)));
        assertEquals("no change", new MergeSiblingMatmuls(Set.of()).run(g).summary(), "weights read in place, kept packed");
        assertEquals("no change", new MergeSiblingMatmuls(Set.of(1, 2)).run(g).summary(), "one weight not frozen");
        Graph out = NpuGraphCompiler.pipeline(Set.of()).run(g).graph();
        assertEquals(3, count(out, Op.MatMul.class), out.toTable());
        assertEquals(0, count(out, Op.Concat.class), out.toTable());
        Tensor[] in = inputs(g);
        Tensor[] want = new GraphInterpreter(g).run(in);
        NpuExecutable exe = new NpuGraphCompiler().compile(g);
        for (int call = 0; call < 3; call++) {
            Tensor[] got = exe.run(in);
            for (int i = 0; i < 3; i++) assertArrayEquals(want[i].toFloatArray(), got[i].toFloatArray(), "call " + call + ", output " + i);
        }

        // Weights computed in the graph are made per call anyway: the group merges.
        GraphBuilder c = new GraphBuilder();
        ValueRef x2 = c.input(new TensorMeta(DType.FLOAT32, Shape.of(6, 32)));
        ValueRef[] scaled = new ValueRef[2], products = new ValueRef[2];
        for (int i = 0; i < 2; i++) {
            ValueRef w = c.input(new TensorMeta(DType.FLOAT32, Shape.of(16, 32)));
            scaled[i] = c.apply(new Op.BinaryScalar(BinaryFn.MUL, 0.5, false, false), List.of(w)).get(0);
        }
        for (int i = 0; i < 2; i++) {
            products[i] = c.apply(new Op.MatMul(), List.of(x2, c.apply(new Op.Permute(List.of(1, 0)), List.of(scaled[i])).get(0))).get(0);
        }
        assertEquals("merged 1 group", new MergeSiblingMatmuls(Set.of()).run(c.build(List.of(products))).summary());
    }

    @Test
    void productsWithAnEpilogueOtherOperandsOrSharedTransposesAreLeftAlone() {
        ValueRef x = input(6, 32), y = input(6, 32), wq = input(16, 32), wk = input(16, 32), bias = input(16);
        ValueRef withBias = op(new Op.Binary(BinaryFn.ADD), linear(x, wq), bias);
        PassResult r = new MergeSiblingMatmuls(Set.of(0, 1, 2, 3, 4)).run(b.build(List.of(withBias, linear(x, wk))));
        assertEquals("no change", r.summary(), "a product with a bias keeps its epilogue");

        GraphBuilder c = new GraphBuilder();
        ValueRef x2 = c.input(new TensorMeta(DType.FLOAT32, Shape.of(6, 32))), y2 = c.input(new TensorMeta(DType.FLOAT32, Shape.of(6, 32)));
        ValueRef w = c.input(new TensorMeta(DType.FLOAT32, Shape.of(16, 32)));
        ValueRef wt = c.apply(new Op.Permute(List.of(1, 0)), List.of(w)).get(0);
        ValueRef p1 = c.apply(new Op.MatMul(), List.of(x2, wt)).get(0), p2 = c.apply(new Op.MatMul(), List.of(y2, wt)).get(0);
        assertEquals("no change", new MergeSiblingMatmuls(Set.of(2)).run(c.build(List.of(p1, p2))).summary(), "different activations");
    }

    @Test
    void theDecoderBlocksFrozenProjectionsMergeAndStillMatchEager() {
        ValueRef x = input(1, 10, 32), wq = input(32, 32), wk = input(8, 32), wv = input(8, 32), wo = input(32, 32);
        ValueRef q = linear(x, wq), k = linear(x, wk), v = linear(x, wv);
        ValueRef attn = op(new Op.MatMul(), op(new Op.Softmax(2, false), op(new Op.MatMul(), q,
                op(new Op.Permute(List.of(0, 2, 1)), op(new Op.Concat(2), k, k, k, k)))), op(new Op.Concat(2), v, v, v, v));
        Graph g = b.build(List.of(linear(attn, wo)));
        Set<Integer> frozen = Set.of(1, 2, 3, 4);
        PassResult r = new MergeSiblingMatmuls(frozen).run(g);
        assertEquals(List.of("matmuls %6, %8, %10 share %0: one product of 48 columns"), r.details());
        Tensor[] in = inputs(g);
        float[] want = new GraphInterpreter(g).run(in)[0].toFloatArray();
        float[] got = new NpuGraphCompiler().compile(g, frozen).run(in)[0].toFloatArray();
        // The attention in the middle is re-formed into the attention kernel, which rounds differently.
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-4 * (1 + Math.abs(want[i])), "element " + i);
    }
}
