package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class GraphTransformerTest {

    /** Inputs between ops, a multi-output op, an output used twice. */
    static Graph sample() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 4);
        ValueRef e = t.unary(UnaryFn.EXP, x);
        ValueRef w = t.input(DType.FLOAT32, 4);
        List<ValueRef> ln = t.ops(new Op.LayerNorm(1, 1e-5, true, false), e, w);
        return t.build(ln.get(0), ln.get(2), ln.get(0));
    }

    @Test
    void theIdentityTransformCopiesAnEqualGraph() {
        Graph g = sample();
        Graph copy = GraphTransformer.copy(g);
        assertNotSame(g, copy);
        assertEquals(g, copy);
        assertEquals(g.canonicalText(), copy.canonicalText());
    }

    @Test
    void replacementsRedirectLaterUsesAndOutputs() {
        // exp becomes sigmoid: a node emitted in its place, its outputs mapped to it.
        Graph out = GraphTransformer.transform(sample(), (cx, node) -> {
            if (node.op() instanceof Op.Unary u && u.fn() == UnaryFn.EXP) {
                cx.replace(node, cx.emit1(new Op.Unary(UnaryFn.SIGMOID), cx.values(node.inputs())));
            } else {
                cx.copy(node);
            }
        });
        assertEquals("""
                value   op                                                             args          type
                %0      input 0                                                                      float32[2,4]
                %1      sigmoid                                                        %0            float32[2,4]
                %2      input 1                                                                      float32[4]
                %3      layer_norm(axis=1, eps=1.0E-5, hasWeight=true, hasBias=false)  %1, %2        float32[2,4], float32[2,1], float32[2,1]
                return                                                                 %3, %3.2, %3
                """, out.toTable());
    }

    @Test
    void rulesSeeTheNewGraphsProducers() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 3);
        ValueRef a = t.unary(UnaryFn.NEG, x);
        Graph g = t.build(t.unary(UnaryFn.ABS, a));
        List<String> seen = new java.util.ArrayList<>();
        GraphTransformer.transform(g, (cx, node) -> {
            for (ValueRef in : cx.values(node.inputs())) {
                Node p = cx.producer(in);
                seen.add(node.op().name() + " <- " + (p instanceof Node.Apply ap ? ap.op().name() : "input") + " "
                        + cx.meta(in));
            }
            if (node.op() instanceof Op.Unary u && u.fn() == UnaryFn.NEG) {
                cx.replace(node, cx.emit1(new Op.Unary(UnaryFn.RELU), cx.values(node.inputs())));
            } else {
                cx.copy(node);
            }
        });
        assertEquals(List.of("neg <- input float32[3]", "abs <- relu float32[3]"), seen);
    }

    @Test
    void usingADroppedValueIsAnError() {
        Graph g = sample();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> GraphTransformer.transform(g, (cx, node) -> {
            if (node.op() instanceof Op.Unary) cx.drop(node);
            else cx.copy(node);
        }));
        assertEquals("value %1 is used by %3 but was dropped", e.getMessage());

        IllegalStateException out = assertThrows(IllegalStateException.class, () -> GraphTransformer.transform(g, (cx, node) -> {
            if (node.op() instanceof Op.LayerNorm) cx.drop(node);
            else cx.copy(node);
        }));
        assertEquals("value %3 is used by a graph output but was dropped", out.getMessage());
    }

    @Test
    void replacementsMustKeepTheType() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 3);
        Graph g = t.build(t.op(new Op.Cast(DType.FLOAT64), x));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> GraphTransformer.transform(g,
                (cx, node) -> cx.replace(node, cx.value(node.inputs().get(0)))));
        assertEquals("replacing %1 (float64[3]) by new value %0 (float32[3]) would change its type", e.getMessage());
        IllegalStateException count = assertThrows(IllegalStateException.class, () -> GraphTransformer.transform(g,
                (cx, node) -> cx.replace(node, List.of())));
        assertEquals("%1 has 1 outputs, replaced by 0 values", count.getMessage());
    }

    @Test
    void everyNodeMustBeMappedOrDroppedButNotBoth() {
        Graph g = sample();
        IllegalStateException neither = assertThrows(IllegalStateException.class,
                () -> GraphTransformer.transform(g, (cx, node) -> { }));
        assertEquals("the transform must either map or drop %1 (exp), and did neither", neither.getMessage());
        IllegalStateException both = assertThrows(IllegalStateException.class, () -> GraphTransformer.transform(g, (cx, node) -> {
            cx.copy(node);
            cx.drop(node);
        }));
        assertEquals("the transform must either map or drop %1 (exp), and did both", both.getMessage());
    }

    @Test
    void copyingANodeWhoseRecordedTypeDisagreesWithInferenceIsAnError() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(new TensorMeta(DType.FLOAT32, Shape.of(3)));
        List<ValueRef> bad = b.apply(new Op.BinaryScalar(BinaryFn.ADD, 1, false, false), List.of(x),
                List.of(new TensorMeta(DType.FLOAT64, Shape.of(3))));
        Graph g = b.build(bad);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> GraphTransformer.copy(g));
        assertEquals("copying %1 (add) over [%0] infers [float32[3]] instead of [float64[3]]", e.getMessage());
    }
}
