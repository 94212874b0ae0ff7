package dev.kiln.trace;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.ir.Graph;
import dev.kiln.ops.Dispatch;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * The compiled form of one user function: a table from input signature to compiled
 * graph. A call whose signature has an entry replays its graph without running the
 * user's code; a new signature traces and compiles (once, while concurrent callers
 * wait). Functions with graph breaks re-run their code each call in lazy mode, each
 * segment finding its compiled graph by hash.
 */
public final class CompiledFunction {
    private static final System.Logger LOG = System.getLogger("dev.kiln");

    private final String name;
    private final Function<Object[], Object> body;
    private final CompileOptions options;
    private final List<String> argNames;
    private final Object compileLock = new Object();
    private final ConcurrentHashMap<String, GraphExecutable> segmentCache = new ConcurrentHashMap<>();
    private final List<CompileEvent> events = Collections.synchronizedList(new ArrayList<>());

    private volatile Entry[] entries = new Entry[0];
    private volatile boolean eagerFallback;

    /** One trace: the signature it was for, why it happened, and what it produced. */
    public record CompileEvent(Signature signature, String reason, List<Graph> graphs,
                               List<TraceSession.GraphBreak> breaks, long traceNanos) {}

    private sealed interface Entry permits WholeGraph, Lazy {
        Signature signature();
    }

    /** A function without breaks: replay the graph, binding captured tensors by reference. */
    private record WholeGraph(Signature signature, Graph graph, GraphExecutable executable, Tensor[] captured,
                              OutputShape shape) implements Entry {}

    /** A function with breaks: re-run the code lazily every call. */
    private record Lazy(Signature signature) implements Entry {}

    public CompiledFunction(String name, Function<Object[], Object> body, CompileOptions options, List<String> argNames) {
        this.name = name;
        this.body = body;
        this.options = options;
        this.argNames = List.copyOf(argNames);
    }

    public String name() { return name; }
    public CompileOptions options() { return options; }
    public List<CompileEvent> events() { return List.copyOf(events); }
    public boolean runsEagerly() { return eagerFallback; }
    public int entryCount() { return entries.length; }

    /** True when the function has graph breaks and re-runs its code each call. */
    public boolean isLazy(Object[] args) {
        for (Entry e : entries) if (e.signature().matches(args)) return e instanceof Lazy;
        return false;
    }

    public Object call(Object[] args) {
        if (Dispatch.isIntercepting()) {
            // Called from inside another compiled function's trace: inline into that graph.
            return body.apply(args);
        }
        for (Entry e : entries) {
            if (e.signature().matches(args)) return run(e, args);
        }
        return miss(args);
    }

    private Object run(Entry e, Object[] args) {
        return switch (e) {
            case WholeGraph w -> w.shape().rebuild(w.executable().run(bind(args, w.captured())));
            case Lazy l -> traceAndRun(args, false).result();
        };
    }

    private static Tensor[] bind(Object[] args, Tensor[] captured) {
        int n = 0;
        for (Object a : args) if (a instanceof Tensor) n++;
        Tensor[] inputs = new Tensor[n + captured.length];
        int i = 0;
        for (Object a : args) if (a instanceof Tensor t) inputs[i++] = t;
        System.arraycopy(captured, 0, inputs, n, captured.length);
        return inputs;
    }

    private Object miss(Object[] args) {
        synchronized (compileLock) {
            for (Entry e : entries) {
                if (e.signature().matches(args)) return run(e, args);
            }
            if (eagerFallback || entries.length >= options.recompileLimit()) {
                if (!eagerFallback) {
                    eagerFallback = true;
                    LOG.log(System.Logger.Level.WARNING, "kiln: " + name + " hit the recompile limit ("
                            + options.recompileLimit() + " signatures); running it eagerly from now on. Last guard failure: "
                            + reason(args));
                }
                return body.apply(args);
            }
            String reason = reason(args);
            long t0 = System.nanoTime();
            Traced traced = traceAndRun(args, true);
            long nanos = System.nanoTime() - t0;
            Signature sig = Signature.of(args);
            Entry entry = traced.session().hadBreaks()
                    ? new Lazy(sig)
                    : new WholeGraph(sig, traced.graph(), traced.executable(), traced.captured(), traced.shape());
            events.add(new CompileEvent(sig, reason, traced.session().hadBreaks() ? traced.session().segments() : List.of(traced.graph()),
                    traced.session().breaks(), nanos));
            Entry[] next = Arrays.copyOf(entries, entries.length + 1);
            next[entries.length] = entry;
            entries = next;
            return traced.result();
        }
    }

    private String reason(Object[] args) {
        Entry[] es = entries;
        if (es.length == 0) return "first call";
        return "guard failed: " + es[es.length - 1].signature().explainMismatch(args, argNames);
    }

    private record Traced(TraceSession session, Object result, Graph graph, GraphExecutable executable,
                          Tensor[] captured, OutputShape shape) {}

    /** Runs the body on symbolic stand-ins and produces this call's result (and the graph when there was no break). */
    private Traced traceAndRun(Object[] args, boolean keepGraph) {
        TraceSession session = new TraceSession(options.fullGraph(), this::compileSegment);
        Object[] symbolic = new Object[args.length];
        for (int i = 0; i < args.length; i++) symbolic[i] = args[i] instanceof Tensor t ? session.input(t) : args[i];
        Object out = Dispatch.intercepting(session, () -> body.apply(symbolic));
        OutputShape shape = OutputShape.of(name, out);
        List<Tensor> outputs = shape.flatten(out);
        if (!session.hadBreaks() && keepGraph) {
            Graph g = session.graph(outputs);
            GraphExecutable exe = compile(g);
            Tensor[] captured = session.capturedInputs().toArray(Tensor[]::new);
            Tensor[] values = exe.run(bind(args, captured));
            return new Traced(session, shape.rebuild(values), g, exe, captured, shape);
        }
        return new Traced(session, shape.rebuild(session.finish(outputs)), null, null, null, shape);
    }

    private GraphExecutable compileSegment(Graph g) {
        return segmentCache.computeIfAbsent(g.hash(), h -> compile(g));
    }

    private GraphExecutable compile(Graph g) {
        if (options.backend() == Backend.EAGER) return new GraphInterpreter(g);
        throw new KilnException("backend " + options.backend() + " is not available");
    }

    /** How the user's function returned its tensors, to rebuild the same shape of result. */
    private record OutputShape(Kind kind, int count) {
        enum Kind { TENSOR, ARRAY, LIST }

        static OutputShape of(String fn, Object out) {
            return switch (out) {
                case Tensor t -> new OutputShape(Kind.TENSOR, 1);
                case Tensor[] a -> new OutputShape(Kind.ARRAY, a.length);
                case List<?> l when l.stream().allMatch(x -> x instanceof Tensor) -> new OutputShape(Kind.LIST, l.size());
                case null -> throw new KilnException(fn + ": a compiled function must return a Tensor, Tensor[] or List<Tensor>, got null");
                default -> throw new KilnException(fn + ": a compiled function must return a Tensor, Tensor[] or List<Tensor>, got "
                        + out.getClass().getName());
            };
        }

        List<Tensor> flatten(Object out) {
            return switch (kind) {
                case TENSOR -> List.of((Tensor) out);
                case ARRAY -> Arrays.asList((Tensor[]) out);
                case LIST -> {
                    List<Tensor> l = new ArrayList<>();
                    for (Object o : (List<?>) out) l.add((Tensor) o);
                    yield l;
                }
            };
        }

        Object rebuild(Tensor[] values) {
            return switch (kind) {
                case TENSOR -> values[0];
                case ARRAY -> values;
                case LIST -> List.of(values);
            };
        }
    }
}
