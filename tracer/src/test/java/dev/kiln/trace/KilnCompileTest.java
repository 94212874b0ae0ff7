package dev.kiln.trace;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Dynamic;
import dev.kiln.Explanation;
import dev.kiln.Fn1;
import dev.kiln.Fn2;
import dev.kiln.Fn3;
import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.KilnGraphBreakException;
import dev.kiln.nn.F;
import dev.kiln.nn.Module;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KilnCompileTest {
    /** The tracer is tested on the reference backend; the NPU backend lives in graph-optimizer. */
    private static final CompileOptions EAGER = CompileOptions.defaults().backend(Backend.EAGER);


    @Test
    void compiledResultEqualsEagerAndReplaysWithoutRunningUserCode() {
        AtomicInteger runs = new AtomicInteger();
        Fn3<Tensor> mlp = (x, w, b) -> {
            runs.incrementAndGet();
            return F.gelu(x.matmul(w).add(b));
        };
        Fn3<Tensor> compiled = Kiln.compile(mlp, EAGER);
        Tensor x = Tensor.randn(1, 4, 8), w = Tensor.randn(2, 8, 16), b = Tensor.randn(3, 16);
        float[] eager = mlp.apply(x, w, b).toFloatArray();
        assertArrayEquals(eager, compiled.apply(x, w, b).toFloatArray());
        int afterFirst = runs.get();
        Tensor x2 = Tensor.randn(9, 4, 8);
        assertArrayEquals(mlp.apply(x2, w, b).toFloatArray(), compiled.apply(x2, w, b).toFloatArray());
        assertEquals(afterFirst + 1, runs.get(), "the second compiled call must replay, not re-run the lambda");
    }

    @Test
    void newShapeRecompilesAndRecordsTheFailedGuard() {
        Fn1<Tensor> f = Kiln.compile(x -> x.mul(2.0).add(1.0), EAGER);
        f.apply(Tensor.ones(2, 3));
        f.apply(Tensor.ones(2, 3));
        Tensor y = f.apply(Tensor.ones(4, 3));
        assertArrayEquals(new float[] {3, 3, 3}, y.slice(0, 0, 1).reshape(-1).toFloatArray());
        Explanation e = Kiln.explain(f, Tensor.ones(4, 3));
        assertEquals(2, e.compiles().size());
        assertEquals("first call", e.compiles().get(0).reason());
        assertEquals("guard failed: a: shape [2,3] vs [4,3] (dimension 0: 2 vs 4)", e.compiles().get(1).reason());
    }

    @Test
    void explainSaysWhereACompilingCallsTimeWent() {
        Fn1<Tensor> f = Kiln.compile(x -> x.add(1.0).mul(x), EAGER.dynamic(Dynamic.OFF));
        f.apply(Tensor.ones(3));
        Explanation e = Kiln.explain(f, Tensor.ones(3));
        CompiledFunction.CompileEvent c = e.compiles().getFirst();
        CompiledFunction.Phases p = c.phases();
        assertTrue(p.traceNanos() > 0 && p.compileNanos() > 0 && p.firstRunNanos() > 0, p.toString());
        assertTrue(p.traceNanos() + p.compileNanos() + p.firstRunNanos() <= c.totalNanos(), c.totalNanos() + " vs " + p);
        assertTrue(e.toString().matches("(?s).*time: [0-9.]+ ms: trace [0-9.]+ ms, compile or load [0-9.]+ ms, first run [0-9.]+ ms\n.*"),
                e.toString());
    }

    @Test
    void dtypeAndScalarArgumentsAreGuarded() {
        AtomicInteger runs = new AtomicInteger();
        FnN<Tensor> f = Kiln.compileN(args -> {
            runs.incrementAndGet();
            return ((Tensor) args[0]).mul((double) args[1]);
        }, EAGER);
        Tensor x = Tensor.ones(3);
        assertArrayEquals(new float[] {2, 2, 2}, f.apply(x, 2.0).toFloatArray());
        assertArrayEquals(new float[] {2, 2, 2}, f.apply(x, 2.0).toFloatArray());
        assertArrayEquals(new float[] {5, 5, 5}, f.apply(x, 5.0).toFloatArray());
        assertEquals(2, runs.get());
        assertEquals("guard failed: argument 1: 2.0 vs 5.0", Kiln.explain(f, x, 5.0).compiles().get(1).reason());
    }

    @Test
    void recompileLimitWarnsOnceThenRunsEagerly() {
        Fn1<Tensor> f = Kiln.compile(x -> x.add(1.0), EAGER.recompileLimit(2).dynamic(Dynamic.OFF));
        for (int n = 1; n <= 5; n++) {
            assertArrayEquals(new float[n], f.apply(Tensor.full(-1, n)).toFloatArray());
        }
        Explanation e = Kiln.explain(f, Tensor.ones(7));
        assertEquals(2, e.compiles().size());
        assertTrue(e.toString().contains("recompile limit reached"), e.toString());
    }

    @Test
    void capturedTensorsAreInputsByReferenceNotFrozen() {
        Tensor bias = Tensor.of(new float[] {1, 2}, 2);
        Fn1<Tensor> f = Kiln.compile(x -> x.add(bias), EAGER);
        assertArrayEquals(new float[] {1, 2}, f.apply(Tensor.zeros(2)).toFloatArray());
        bias.storage().segment().setAtIndex(ValueLayout.JAVA_FLOAT, 0, 10f);
        assertArrayEquals(new float[] {10, 2}, f.apply(Tensor.zeros(2)).toFloatArray());
    }

    @Test
    void aTensorMadeFromHostDataDuringTheCallIsMadeAgainOnEveryCall() {
        int[] calls = {0};
        Tensor bias = Tensor.of(new float[] {1, 2}, 2);
        // Replayed, the graph would keep the first call's counter tensor.
        Fn1<Tensor> f = Kiln.compile(x -> x.add(bias).add(Tensor.of(new float[] {calls[0]++}, 1)), EAGER);
        for (int call = 0; call < 3; call++) {
            assertArrayEquals(new float[] {1 + call, 2 + call}, f.apply(Tensor.zeros(2)).toFloatArray(), "call " + call);
        }
        Explanation e = Kiln.explain(f, Tensor.zeros(2));
        assertTrue(e.isLazy(), e.toString());
        assertEquals(1, e.graphBreaks().size(), e.toString());
        assertEquals("a float32[1] tensor made from host data during the call is a graph input, so calls re-run the code"
                + " (pass it as an argument, or make it with tensor ops, to replay one graph)", e.graphBreaks().get(0).reason());
        assertTrue(e.graphBreaks().get(0).sourceLine().contains("KilnCompileTest"), e.graphBreaks().get(0).sourceLine());

        // A tensor made before the call (bias) is captured by reference and replayed; so is one made by an op.
        Fn1<Tensor> replayed = Kiln.compile(x -> x.add(bias).add(Tensor.full(3, 1)), EAGER);
        replayed.apply(Tensor.zeros(2));
        assertFalse(Kiln.explain(replayed, Tensor.zeros(2)).isLazy());

        var error = assertThrows(KilnGraphBreakException.class, () -> Kiln.compile(
                x -> x.add(Tensor.of(new float[] {calls[0]++}, 1)), EAGER.fullGraph(true)).apply(Tensor.zeros(2)));
        assertTrue(error.getMessage().startsWith("graph break in a fullGraph compile: a float32[1] tensor made from host data during the call"),
                error.getMessage());
    }

    @Test
    void graphBreakGivesEagerResultsAndIsReported() {
        AtomicInteger runs = new AtomicInteger();
        Fn1<Tensor> body = x -> {
            runs.incrementAndGet();
            Tensor s = x.sum();
            double total = s.item();
            return total > 0 ? x.mul(2.0) : x.neg();
        };
        Fn1<Tensor> f = Kiln.compile(body, EAGER);
        Tensor pos = Tensor.of(new float[] {1, 2, 3}, 3), neg = Tensor.of(new float[] {-1, -2, -3}, 3);
        assertArrayEquals(new float[] {2, 4, 6}, f.apply(pos).toFloatArray());
        assertArrayEquals(new float[] {1, 2, 3}, f.apply(neg).toFloatArray());
        assertEquals(2, runs.get(), "a function with a graph break re-runs its code every call");
        Explanation e = Kiln.explain(f, pos);
        assertTrue(e.isLazy());
        assertEquals(1, e.graphBreaks().size());
        assertTrue(e.graphBreaks().get(0).reason().contains("read on the host"), e.graphBreaks().get(0).reason());
        assertTrue(e.graphBreaks().get(0).sourceLine().contains("KilnCompileTest"), e.graphBreaks().get(0).sourceLine());
        assertTrue(e.toString().contains("lazy mode"), e.toString());
    }

    @Test
    void fullGraphMakesABreakAnError() {
        Fn1<Tensor> f = Kiln.compile(x -> x.mul(x.sum().item()), EAGER.fullGraph(true));
        var ex = assertThrows(KilnGraphBreakException.class, () -> f.apply(Tensor.ones(3)));
        assertTrue(ex.getMessage().contains("KilnCompileTest"), ex.getMessage());
    }

    @Test
    void tupleOutputsKeepTheirShape() {
        Fn2<Tensor[]> f = Kiln.compile((a, b) -> new Tensor[] {a.add(b), a.sub(b)}, EAGER);
        Tensor[] out = f.apply(Tensor.ones(2), Tensor.ones(2));
        assertArrayEquals(new float[] {2, 2}, out[0].toFloatArray());
        assertArrayEquals(new float[] {0, 0}, out[1].toFloatArray());
        Fn1<List<Tensor>> g = Kiln.compile(a -> List.of(a.exp(), a), EAGER);
        List<Tensor> l = g.apply(Tensor.zeros(1));
        assertArrayEquals(new float[] {1}, l.get(0).toFloatArray());
    }

    @Test
    void symbolicTensorsCannotEscapeTheirCall() {
        Tensor[] leaked = new Tensor[1];
        Fn1<Tensor> f = Kiln.compile(x -> {
            leaked[0] = x.add(1.0);
            return leaked[0];
        }, EAGER);
        f.apply(Tensor.ones(2));
        var e = assertThrows(KilnException.class, () -> leaked[0].mul(2.0).toFloatArray());
        assertTrue(e.getMessage().contains("outside the compiled call"), e.getMessage());
    }

    static class Linear extends Module {
        Tensor weight, bias;

        Linear(int in, int out, long seed) {
            weight = Tensor.randn(seed, out, in);
            bias = Tensor.randn(seed + 1, out);
        }

        Tensor forward(Tensor x) { return F.linear(x, weight, bias); }
    }

    static class TwoLayer extends Module {
        static final AtomicInteger RUNS = new AtomicInteger();
        Linear first, second;

        TwoLayer(long seed) {
            first = new Linear(4, 8, seed);
            second = new Linear(8, 2, seed + 10);
        }

        Tensor forward(Tensor x) {
            RUNS.incrementAndGet();
            return second.forward(F.relu(first.forward(x)));
        }
    }

    @Test
    void modulesCompileWithParametersAsInputs() {
        TwoLayer eager = new TwoLayer(5);
        TwoLayer compiled = Kiln.compile(new TwoLayer(5), EAGER);
        Tensor x = Tensor.randn(3, 6, 4);
        assertArrayEquals(eager.forward(x).toFloatArray(), compiled.forward(x).toFloatArray());
        int runs = TwoLayer.RUNS.get();

        // A weight update takes effect without a recompile.
        eager.second.bias = Tensor.ones(2);
        compiled.second.bias = Tensor.ones(2);
        assertArrayEquals(eager.forward(x).toFloatArray(), compiled.forward(x).toFloatArray());
        assertEquals(runs + 1, TwoLayer.RUNS.get(), "only the eager call runs forward");

        // A second instance of the same class shares the compiled graph.
        TwoLayer other = new TwoLayer(99);
        TwoLayer otherCompiled = Kiln.compile(new TwoLayer(99), EAGER);
        assertArrayEquals(other.forward(x).toFloatArray(), otherCompiled.forward(x).toFloatArray());
        assertEquals(runs + 2, TwoLayer.RUNS.get());
        assertEquals(1, Kiln.explain(otherCompiled, x).compiles().size());
    }

    static class DoubledLinear extends Linear {
        DoubledLinear(int in, int out, long seed) { super(in, out, seed); }

        @Override
        Tensor forward(Tensor x) { return super.forward(x).mul(2.0); }
    }

    @Test
    void replacingASubModuleWithAnotherKindRecompiles() {
        TwoLayer eager = new TwoLayer(7);
        TwoLayer compiled = Kiln.compile(new TwoLayer(7), EAGER);
        Tensor x = Tensor.randn(4, 2, 4);
        compiled.forward(x);
        eager.second = new DoubledLinear(8, 2, 3);
        compiled.second = eager.second;
        assertArrayEquals(eager.forward(x).toFloatArray(), compiled.forward(x).toFloatArray());
        Explanation e = Kiln.explain(compiled, x);
        assertTrue(e.compiles().getLast().reason().contains("guard failed"), e.toString());
    }

    @Test
    void moduleThatIsNotAModuleIsRejected() {
        var e = assertThrows(KilnException.class, () -> Kiln.compile(new Object(), EAGER));
        assertTrue(e.getMessage().contains("must extend dev.kiln.nn.Module"), e.getMessage());
    }
}
