package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FormActivationTest {
    private static final double INV_SQRT2 = 1 / Math.sqrt(2);

    private static Graph formed(Graph g) { return new FormActivation().run(g).graph(); }

    private static Op onlyOp(Graph g) {
        Graph clean = new DeadCodeElimination().run(g).graph();
        assertEquals(1, clean.opCount(), clean.toTable());
        return ((Node.Apply) clean.node(clean.nodes().size() - 1)).op();
    }

    /**
     * Random values and the special ones through both graphs. Both give the same NaNs and
     * infinities and agree to 1e-6 absolute; the formed op is within 1e-6 relative of the
     * double-precision function (the written-out GELU is not, in its negative tail, where
     * {@code 1 + erf} cancels).
     */
    private static void assertSameFunction(Graph before, Graph after, UnaryFn fn) {
        Tensor x = Tensor.cat(0, Tensor.randn(3, 200).mul(4.0),
                Tensor.of(new float[] {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -20f, 20f, 1e-30f}, 8));
        double[] in = x.toDoubleArray();
        double[] e = GraphRuns.run(before, new Tensor[] {x})[0].toDoubleArray(), a = GraphRuns.run(after, new Tensor[] {x})[0].toDoubleArray();
        for (int i = 0; i < e.length; i++) {
            double exact = fn.apply(in[i]);
            if (Double.isNaN(e[i]) || Double.isInfinite(e[i])) {
                assertEquals(e[i], a[i], "element " + i);
            } else {
                assertEquals(e[i], a[i], 1e-6, "element " + i);
                assertEquals(exact, a[i], 1e-6 * Math.abs(exact) + 1e-37, "element " + i + " against the exact value");
            }
        }
    }

    private static Graph unaryGraph(BiFunction<TestGraph, ValueRef, ValueRef> body) {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 208);
        return t.build(body.apply(t, x));
    }

    @Test
    void xTimesSigmoidOfXIsSiluOnEitherSide() {
        for (int side = 0; side < 2; side++) {
            int s = side;
            Graph g = unaryGraph((t, x) -> {
                ValueRef sig = t.unary(UnaryFn.SIGMOID, x);
                return s == 0 ? t.binary(BinaryFn.MUL, x, sig) : t.binary(BinaryFn.MUL, sig, x);
            });
            Graph out = formed(g);
            assertEquals(new Op.Unary(UnaryFn.SILU), onlyOp(out));
            assertSameFunction(g, out, UnaryFn.SILU);
        }
    }

    @Test
    void aSigmoidReadElsewhereOrOfAnotherValueIsLeftAlone() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 8), y = t.input(DType.FLOAT32, 8);
        ValueRef sig = t.unary(UnaryFn.SIGMOID, x);
        Graph shared = t.build(t.binary(BinaryFn.ADD, t.binary(BinaryFn.MUL, x, sig), sig));
        assertEquals(shared, formed(shared));

        TestGraph u = new TestGraph();
        ValueRef a = u.input(DType.FLOAT32, 8), b = u.input(DType.FLOAT32, 8);
        Graph other = u.build(u.binary(BinaryFn.MUL, a, u.unary(UnaryFn.SIGMOID, b)));
        assertEquals(other, formed(other));
    }

    /** The erf GELU as written in several ways: factor order, grouping, /2 or *0.5, /sqrt 2 or *1/sqrt 2. */
    private static final List<BiFunction<TestGraph, ValueRef, ValueRef>> GELU_FORMS = List.of(
            (t, x) -> t.binary(BinaryFn.MUL, t.scalar(BinaryFn.MUL, x, 0.5),
                    t.scalar(BinaryFn.ADD, t.unary(UnaryFn.ERF, t.scalar(BinaryFn.DIV, x, Math.sqrt(2))), 1)),
            (t, x) -> t.scalar(BinaryFn.MUL, t.binary(BinaryFn.MUL,
                    t.scalar(BinaryFn.ADD, t.unary(UnaryFn.ERF, t.scalar(BinaryFn.MUL, x, INV_SQRT2)), 1), x), 0.5),
            (t, x) -> t.scalar(BinaryFn.DIV, t.binary(BinaryFn.MUL, x,
                    t.scalar(BinaryFn.ADD, t.unary(UnaryFn.ERF, t.scalar(BinaryFn.MUL, x, (float) INV_SQRT2)), 1)), 2),
            // ONNX's decomposition of Gelu before opset 20: Mul(Mul(x, 0.5), Add(Erf(Div(x, 1.4142135)), 1)).
            (t, x) -> t.binary(BinaryFn.MUL, t.scalar(BinaryFn.MUL, x, 0.5),
                    t.scalar(BinaryFn.ADD, t.unary(UnaryFn.ERF, t.scalar(BinaryFn.DIV, x, (float) Math.sqrt(2))), 1)));

    @Test
    void theErfGeluWrittenOutIsGeluInEveryForm() {
        for (BiFunction<TestGraph, ValueRef, ValueRef> form : GELU_FORMS) {
            Graph g = unaryGraph(form);
            Graph out = formed(g);
            assertEquals(new Op.Unary(UnaryFn.GELU), onlyOp(out), g.toTable());
            assertSameFunction(g, out, UnaryFn.GELU);
        }
    }

    @Test
    void anotherConstantOrScaleIsAnotherFunction() {
        Graph rounder = unaryGraph((t, x) -> t.binary(BinaryFn.MUL, t.scalar(BinaryFn.MUL, x, 0.5),
                t.scalar(BinaryFn.ADD, t.unary(UnaryFn.ERF, t.scalar(BinaryFn.MUL, x, 0.7071)), 1)));
        assertEquals(rounder, formed(rounder));
        Graph noHalf = unaryGraph((t, x) -> t.binary(BinaryFn.MUL, x,
                t.scalar(BinaryFn.ADD, t.unary(UnaryFn.ERF, t.scalar(BinaryFn.MUL, x, INV_SQRT2)), 1)));
        assertEquals(noHalf, formed(noHalf));
        Graph minusOne = unaryGraph((t, x) -> t.binary(BinaryFn.MUL, t.scalar(BinaryFn.MUL, x, 0.5),
                t.scalar(BinaryFn.ADD, t.unary(UnaryFn.ERF, t.scalar(BinaryFn.MUL, x, INV_SQRT2)), -1)));
        assertEquals(minusOne, formed(minusOne));
    }

    @Test
    void anErfReadOutsideThePatternIsLeftAlone() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 8);
        ValueRef erf = t.unary(UnaryFn.ERF, t.scalar(BinaryFn.MUL, x, INV_SQRT2));
        ValueRef gelu = t.binary(BinaryFn.MUL, t.scalar(BinaryFn.MUL, x, 0.5), t.scalar(BinaryFn.ADD, erf, 1));
        Graph g = t.build(t.binary(BinaryFn.ADD, gelu, erf));
        assertEquals(g, formed(g));
    }

    @Test
    void theStandardPipelineFormsThemAndReportsIt() {
        Graph g = unaryGraph((t, x) -> GELU_FORMS.getFirst().apply(t, t.binary(BinaryFn.MUL, x, t.unary(UnaryFn.SIGMOID, x))));
        Pipeline.Result r = Pipeline.standard().run(g);
        assertEquals(List.of(new Op.Unary(UnaryFn.SILU), new Op.Unary(UnaryFn.GELU)),
                r.graph().nodes().stream().filter(n -> n instanceof Node.Apply).map(n -> ((Node.Apply) n).op()).toList(), r.graph().toTable());
        assertTrue(r.explain().contains("is silu(x)") && r.explain().contains("is gelu(x)"), r.explain());
    }
}
