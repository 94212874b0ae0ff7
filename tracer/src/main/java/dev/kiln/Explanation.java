package dev.kiln;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ops.Op;
import dev.kiln.trace.CompiledFunction;
import dev.kiln.trace.ModuleCompiler;
import dev.kiln.trace.TraceSession;

import java.util.List;

/**
 * What the compiler did with a compiled function: each compiled signature with the
 * reason it compiled (the guard that failed), its graphs and node counts, graph
 * breaks with their reasons and source lines, and whether calls replay or re-run
 * the user's code.
 */
public final class Explanation {
    private final String functionName;
    private final CompileOptions options;
    private final List<CompiledFunction.CompileEvent> events;
    private final boolean eagerFallback;
    private final boolean lazy;
    private final double callMicros;
    /** For a compiled module, how its proxy class was obtained; else null. */
    private final String moduleProxy;

    private Explanation(String functionName, CompileOptions options, List<CompiledFunction.CompileEvent> events,
                        boolean eagerFallback, boolean lazy, double callMicros, String moduleProxy) {
        this.functionName = functionName;
        this.options = options;
        this.events = events;
        this.eagerFallback = eagerFallback;
        this.lazy = lazy;
        this.callMicros = callMicros;
        this.moduleProxy = moduleProxy;
    }

    static Explanation of(Object compiled, Object[] userArgs) {
        CompiledFunction f = Kiln.unwrap(compiled);
        boolean module = ModuleCompiler.isCompiledModule(compiled);
        Object[] args = module ? ModuleCompiler.fullArgs(compiled, userArgs) : userArgs;
        java.util.function.Supplier<Object> call = module ? () -> ModuleCompiler.invokeForward(compiled, userArgs) : () -> f.call(args);
        call.get();
        long t0 = System.nanoTime();
        call.get();
        double micros = (System.nanoTime() - t0) / 1e3;
        return new Explanation(f.name(), f.options(), f.events(), f.runsEagerly(), f.isLazy(args), micros,
                module ? ModuleCompiler.describeProxy(compiled) : null);
    }

    public List<CompiledFunction.CompileEvent> compiles() { return events; }

    /** Graph breaks seen over all compiles. */
    public List<TraceSession.GraphBreak> graphBreaks() {
        return events.stream().flatMap(e -> e.breaks().stream()).toList();
    }

    /** All graphs compiled (segments included). */
    public List<Graph> graphs() { return events.stream().flatMap(e -> e.graphs().stream()).toList(); }

    public boolean isLazy() { return lazy; }

    /** The call's time and its phases, e.g. "time: 120.5 ms: trace 10.2, compile or load 30.1, first run 80.2". */
    private static String timeLine(CompiledFunction.CompileEvent e) {
        CompiledFunction.Phases p = e.phases();
        StringBuilder sb = new StringBuilder(String.format(java.util.Locale.ROOT, "  time: %.2f ms", e.totalNanos() / 1e6));
        if (p.compileNanos() == 0 && p.firstRunNanos() == 0) {
            if (p.traceNanos() > 0) sb.append(String.format(java.util.Locale.ROOT, " tracing and running (graph breaks: segments compile as they run)"));
        } else {
            sb.append(String.format(java.util.Locale.ROOT, ": trace %.2f ms, compile or load %.2f ms, first run %.2f ms",
                    p.traceNanos() / 1e6, p.compileNanos() / 1e6, p.firstRunNanos() / 1e6));
            long rest = e.totalNanos() - p.traceNanos() - p.compileNanos() - p.firstRunNanos();
            if (!e.dynamicDims().isEmpty()) sb.append(String.format(java.util.Locale.ROOT, ", learning symbolic sizes %.2f ms", rest / 1e6));
        }
        return sb.append('\n').toString();
    }

    /** One line per graph input an in-place op updates: the caller's memory the graph writes, returned after its outputs. */
    private static void inPlaceUpdates(StringBuilder sb, Graph graph) {
        for (Node n : graph.nodes()) {
            if (!(n instanceof Node.Apply ap && ap.op() instanceof Op.InPlace inPlace)) continue;
            for (int k = 0; k < inPlace.overwrites().size(); k++) {
                if (graph.node(ap.inputs().get(inPlace.overwrites().get(k)).node()) instanceof Node.Input in) {
                    sb.append("    input ").append(in.index()).append(" is updated in place: ").append(ap.value(k)).append(" (")
                            .append(ap.op().name()).append("), returned after the function's outputs\n");
                }
            }
        }
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Kiln explain: ").append(functionName).append('\n');
        sb.append("options: backend=").append(options.backend()).append(", fullGraph=").append(options.fullGraph())
                .append(", recompileLimit=").append(options.recompileLimit()).append('\n');
        if (moduleProxy != null) sb.append("module proxy class: ").append(moduleProxy).append('\n');
        sb.append("compiled signatures: ").append(events.size());
        if (eagerFallback) sb.append(" (recompile limit reached: new signatures run eagerly)");
        sb.append('\n');
        int i = 1;
        for (CompiledFunction.CompileEvent e : events) {
            sb.append("\ncompile ").append(i++).append(": ").append(e.reason()).append('\n');
            sb.append("  signature: ").append(e.signature()).append('\n');
            if (!e.dynamicDims().isEmpty()) sb.append("  symbolic dimensions: ").append(e.dynamicDims()).append('\n');
            sb.append(timeLine(e));
            int g = 1;
            for (Graph graph : e.graphs()) {
                sb.append("  graph ").append(g++).append(": ").append(graph.opCount()).append(" ops, ")
                        .append(graph.inputCount()).append(" inputs, hash ").append(graph.hash(), 0, 16).append('\n');
                for (String line : graph.toTable().split("\n")) sb.append("    ").append(line).append('\n');
                inPlaceUpdates(sb, graph);
            }
            if (e.executable() != null && !e.executable().describe().isEmpty()) {
                for (String line : e.executable().describe().split("\n")) sb.append("  ").append(line).append('\n');
            }
            for (TraceSession.GraphBreak b : e.breaks()) {
                sb.append("  graph break: ").append(b.reason()).append(" at ").append(b.sourceLine()).append('\n');
            }
        }
        sb.append('\n');
        if (lazy) {
            sb.append(String.format("calls re-run the Java code in lazy mode (graph breaks): %.1f us per call%n", callMicros));
        } else {
            sb.append(String.format("calls replay the compiled graph: %.1f us per call%n", callMicros));
        }
        return sb.toString();
    }
}
