package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FoldAttentionOutputPermuteTest {
    private static final Op SDPA = new Op.ScaledDotProductAttention(true, 0.3, true, false);

    /** q [2, 4, 5, 8], k and v [2, 2, 5, 8] (GQA), then {@code then} applied to the attention's output. */
    private static Graph attentionThen(java.util.function.BiFunction<TestGraph, ValueRef, ValueRef> then) {
        TestGraph t = new TestGraph();
        ValueRef q = t.input(DType.FLOAT32, 2, 4, 5, 8), k = t.input(DType.FLOAT32, 2, 2, 5, 8), v = t.input(DType.FLOAT32, 2, 2, 5, 8);
        return t.build(then.apply(t, t.op(SDPA, q, k, v)));
    }

    private static ValueRef headsBehindQueries(TestGraph t, ValueRef o) {
        return t.op(new Op.Reshape(Shape.of(2, 5, 32)), t.op(new Op.Permute(List.of(0, 2, 1, 3)), o));
    }

    private static long count(Graph g, Class<?> op) {
        return g.nodes().stream().filter(n -> n instanceof Node.Apply ap && op.isInstance(ap.op())).count();
    }

    private static void assertSameBits(Graph before, Graph after) {
        Tensor[] in = before.inputMetas().stream().map(m -> Tensor.randn(m.shape().numel(), m.shape().dims())).toArray(Tensor[]::new);
        assertArrayEquals(GraphRuns.run(before, in)[0].toFloatArray(), GraphRuns.run(after, in)[0].toFloatArray());
    }

    @Test
    void thePermuteBeforeTheHeadsAreJoinedBecomesTheAttentionsOutputLayout() {
        Graph g = attentionThen(FoldAttentionOutputPermuteTest::headsBehindQueries);
        PassResult r = new FoldAttentionOutputPermute().run(g);
        Graph out = new DeadCodeElimination().run(r.graph()).graph();
        assertEquals(0, count(out, Op.Permute.class), out.toTable());
        assertEquals(0, count(out, Op.ScaledDotProductAttention.class), out.toTable());
        Node.Apply a = out.nodes().stream().filter(n -> n instanceof Node.Apply ap && ap.op() instanceof Op.Attention)
                .map(n -> (Node.Apply) n).findFirst().orElseThrow();
        assertEquals(new Op.Attention(true, 0, 0.3, 0, true, false, 0, true), a.op());
        assertEquals(Shape.of(2, 5, 4, 8), a.outputs().getFirst().shape(), "the heads behind the queries");
        assertEquals(List.of("%4 (permute): the permute of %3 (scaled_dot_product_attention) is its output written transposed"), r.details());
        assertEquals("""
                value   op                                                                                   args        type
                %0      input 0                                                                                          float32[2,4,5,8]
                %1      input 1                                                                                          float32[2,2,5,8]
                %2      input 2                                                                                          float32[2,2,5,8]
                %3      scaled_dot_product_attention(causal=true, scale=0.3, enableGqa=true, hasMask=false)  %0, %1, %2  float32[2,4,5,8]
                %4      permute(dims=[0,2,1,3])                                                              %3          float32[2,5,4,8]
                %5      reshape(shape=[2,5,32])                                                              %4          float32[2,5,32]
                return                                                                                       %5
                """, g.toTable());
        assertEquals("""
                value   op                                                                                                                                     args        type
                %0      input 0                                                                                                                                            float32[2,4,5,8]
                %1      input 1                                                                                                                                            float32[2,2,5,8]
                %2      input 2                                                                                                                                            float32[2,2,5,8]
                %3      attention(causal=true, causalOffset=0, scale=0.3, softcap=0.0, enableGqa=true, hasMask=false, partitionSize=0, transposedOutput=true)  %0, %1, %2  float32[2,5,4,8]
                %4      reshape(shape=[2,5,32])                                                                                                                %3          float32[2,5,32]
                return                                                                                                                                         %4
                """, out.toTable());
        assertSameBits(g, out);
        // Already transposed: nothing more to fold.
        assertEquals("no change", new FoldAttentionOutputPermute().run(out).summary());
    }

    @Test
    void otherPermutesAndAttentionReadElsewhereAreLeftAlone() {
        Graph lastTwo = attentionThen((t, o) -> t.op(new Op.Permute(List.of(0, 1, 3, 2)), o));
        assertEquals("no change", new FoldAttentionOutputPermute().run(lastTwo).summary(), "the last two dimensions swapped");
        Graph batchAndHeads = attentionThen((t, o) -> t.op(new Op.Permute(List.of(1, 0, 2, 3)), o));
        assertEquals("no change", new FoldAttentionOutputPermute().run(batchAndHeads).summary(), "batch and heads swapped");
        Graph readTwice = attentionThen((t, o) -> t.binary(dev.kiln.ops.BinaryFn.ADD, headsBehindQueries(t, o),
                t.op(new Op.Reshape(Shape.of(2, 5, 32)), t.unary(UnaryFn.NEG, t.op(new Op.Permute(List.of(0, 2, 1, 3)), o)))));
        PassResult r = new FoldAttentionOutputPermute().run(readTwice);
        assertEquals("no change", r.summary(), "the attention's output has two readers");
    }

    @Test
    void theStandardPipelineFoldsItAndKeepsTheResults() {
        Graph g = attentionThen(FoldAttentionOutputPermuteTest::headsBehindQueries);
        Pipeline.Result r = Pipeline.standard().run(g);
        assertTrue(r.explain().contains("fold-attention-output-permute: formed 1 node"), r.explain());
        assertFalse(r.graph().toTable().contains("permute"), r.graph().toTable());
        assertSameBits(g, r.graph());
    }
}
