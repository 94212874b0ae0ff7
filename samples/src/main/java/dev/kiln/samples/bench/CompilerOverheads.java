package dev.kiln.samples.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.ir.Graph;
import dev.kiln.nn.F;
import dev.kiln.ops.Dispatch;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.TraceSession;

import java.util.List;

/**
 * The compiler's own costs, in microseconds: {@code dispatch} is one call of a compiled
 * identity-like graph with 16 tensor inputs (guards checked, graph replayed, no kernel
 * runs); {@code trace} is recording one op into a graph.
 */
public final class CompilerOverheads {
    /** Calls (or traced ops) per timed run, so that one run lasts long enough to time. */
    private static final int CALLS_PER_RUN = 200_000;
    public static final int OPS_PER_TRACE = 64;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Timing timing;
    private volatile Object sink;

    public CompilerOverheads(Timing timing) {
        this.timing = timing;
    }

    /** A compiled function returning its tensor arguments: replaying it costs only guards and dispatch. */
    public static FnN<Tensor[]> compiledIdentity() {
        return Kiln.compileN(args -> {
            Tensor[] out = new Tensor[args.length];
            for (int i = 0; i < args.length; i++) out[i] = (Tensor) args[i];
            return out;
        });
    }

    /** Sixteen small tensor arguments. */
    public static Object[] sixteenInputs() {
        Object[] inputs = new Object[16];
        for (int i = 0; i < inputs.length; i++) inputs[i] = Tensor.randn(i, 8, 64);
        return inputs;
    }

    /** The JSON line of the dispatch figure. */
    public String dispatch() {
        FnN<Tensor[]> identity = compiledIdentity();
        Object[] inputs = sixteenInputs();
        Timing.Stats s = timing.measure(() -> {
            for (int i = 0; i < CALLS_PER_RUN; i++) sink = identity.apply(inputs);
        });
        return line("dispatch", s, CALLS_PER_RUN, "compiled identity graph, 16 tensor inputs");
    }

    /** The JSON line of the tracing figure (per op). */
    public String trace() {
        Tensor x = Tensor.randn(1, 64, 64);
        int traces = CALLS_PER_RUN / OPS_PER_TRACE;
        Timing.Stats s = timing.measure(() -> {
            for (int i = 0; i < traces; i++) sink = traceChain(x);
        });
        return line("trace", s, (long) traces * OPS_PER_TRACE, "recording one op (relu/mul chain of 64 ops)");
    }

    /** Records a chain of {@link #OPS_PER_TRACE} ops on {@code input} into a graph, running nothing. */
    public static Graph traceChain(Tensor input) {
        TraceSession session = new TraceSession(true, g -> {
            throw new IllegalStateException("nothing runs while recording");
        });
        Tensor x = session.input(input);
        Tensor y = Dispatch.intercepting(session, () -> {
            Tensor t = x;
            for (int i = 0; i < OPS_PER_TRACE / 2; i++) t = F.relu(t.mul(1.0001));
            return t;
        });
        return session.graph(List.of(y));
    }

    private static String line(String workload, Timing.Stats s, long units, String what) {
        ObjectNode n = JSON.createObjectNode();
        n.put("workload", workload);
        n.put("what", what);
        n.put("median_us", round(s.medianMs() * 1e3 / units));
        n.put("min_us", round(s.minMs() * 1e3 / units));
        n.put("max_us", round(s.maxMs() * 1e3 / units));
        return n.toString();
    }

    private static double round(double v) {
        return new java.math.BigDecimal(v).round(new java.math.MathContext(4)).doubleValue();
    }
}
