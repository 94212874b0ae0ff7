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
import java.util.Set;
import java.util.TreeSet;
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
    /** Made on first use: the first {@link System#getLogger} of a JVM starts the logging framework (13 to 17 ms). */
    private static final class Log {
        static final System.Logger LOG = System.getLogger("dev.kiln");
    }

    private final String name;
    private final Function<Object[], Object> body;
    private final CompileOptions options;
    private final List<String> argNames;
    private final int weightArgsFrom;
    private final Object compileLock = new Object();
    private final ConcurrentHashMap<String, GraphExecutable> segmentCache = new ConcurrentHashMap<>();
    private final List<CompileEvent> events = Collections.synchronizedList(new ArrayList<>());

    private volatile Entry[] entries = new Entry[0];
    private volatile boolean eagerFallback;

    /**
     * One trace: the signature it was for (symbolic dimensions shown as s0, s1, ...), why
     * it happened, which dimensions became symbolic, and what it produced; {@code totalNanos}
     * from the call's start to its result, of which {@code phases} says where.
     */
    public record CompileEvent(String signature, String reason, String dynamicDims, List<Graph> graphs,
                               List<TraceSession.GraphBreak> breaks, long totalNanos, Phases phases, GraphExecutable executable) {}

    /**
     * Where a compiling call's time went: recording the graph (with graph breaks, also running
     * its segments), compiling it or loading it from the backend's cache, and running it the
     * first time; what is left of the total went to learning symbolic sizes.
     */
    public record Phases(long traceNanos, long compileNanos, long firstRunNanos) {
        static final Phases NONE = new Phases(0, 0, 0);
    }

    private sealed interface Entry permits WholeGraph, Lazy, SymbolicGraph {
        boolean matches(Object[] args);
    }

    /** A function without breaks: replay the graph, binding captured tensors by reference. */
    private record WholeGraph(Signature signature, Graph graph, GraphExecutable executable, Tensor[] captured,
                              OutputShape shape, int[] written) implements Entry {
        public boolean matches(Object[] args) { return signature.matches(args); }
    }

    /** A function with breaks: re-run the code lazily every call. */
    private record Lazy(Signature signature) implements Entry {
        public boolean matches(Object[] args) { return signature.matches(args); }
    }

    /**
     * A graph over symbolic dimensions. Each new size is checked against the template by a
     * data-less trace, then runs on {@code family}, the backend's one executable for every
     * size, or, when the backend has none, on the instance compiled for that size; the
     * executables of the sizes seen are kept in a small cache.
     */
    private record SymbolicGraph(SymbolicSignature signature, ShapeTemplate template, Tensor[] captured,
                                 OutputShape shape, int[] written, InstanceCache instances, GraphExecutable family) implements Entry {
        public boolean matches(Object[] args) { return signature.match(args) != null; }
    }

    /** Compiled instantiations of a template, by symbol values, least recently used dropped first. */
    private static final class InstanceCache {
        private static final int CAPACITY = 64;
        private final java.util.LinkedHashMap<List<Long>, GraphExecutable> map = new java.util.LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(java.util.Map.Entry<List<Long>, GraphExecutable> e) { return size() > CAPACITY; }
        };

        synchronized GraphExecutable get(List<Long> key) { return map.get(key); }

        synchronized void put(List<Long> key, GraphExecutable exe) { map.put(key, exe); }
    }

    public CompiledFunction(String name, Function<Object[], Object> body, CompileOptions options, List<String> argNames) {
        this(name, body, options, argNames, Integer.MAX_VALUE);
    }

    /** As above, where the tensor arguments from position {@code weightArgsFrom} on are a module's parameters. */
    public CompiledFunction(String name, Function<Object[], Object> body, CompileOptions options, List<String> argNames, int weightArgsFrom) {
        this.name = name;
        this.body = body;
        this.options = options;
        this.argNames = List.copyOf(argNames);
        this.weightArgsFrom = weightArgsFrom;
        prepareBackend(options.backend());
    }

    /**
     * The graph inputs that are weights when {@link CompileOptions#freezeWeights} is on: the
     * parameters among {@code args}, then the {@code captured} tensors, which follow the
     * arguments' tensors; none otherwise.
     */
    private Set<Integer> weights(Object[] args, int captured) {
        if (!options.freezeWeights()) return Set.of();
        Set<Integer> out = new TreeSet<>();
        int input = 0;
        for (int i = 0; i < args.length; i++) {
            if (args[i] instanceof Tensor) {
                if (i >= weightArgsFrom) out.add(input);
                input++;
            }
        }
        for (int c = 0; c < captured; c++) out.add(input + c);
        return out;
    }

    public String name() { return name; }
    public CompileOptions options() { return options; }
    public List<CompileEvent> events() { return List.copyOf(events); }
    public boolean runsEagerly() { return eagerFallback; }
    public int entryCount() { return entries.length; }

    /** True when the function has graph breaks and re-runs its code each call. */
    public boolean isLazy(Object[] args) {
        for (Entry e : entries) if (e.matches(args)) return e instanceof Lazy;
        return false;
    }

    public Object call(Object[] args) {
        if (Dispatch.isIntercepting()) {
            // Called from inside another compiled function's trace: inline into that graph.
            return body.apply(args);
        }
        for (Entry e : entries) {
            if (e.matches(args)) return run(e, args);
        }
        return miss(args);
    }

    private Object run(Entry e, Object[] args) {
        return switch (e) {
            case WholeGraph w -> w.shape().rebuild(runGraph(w.executable(), bind(args, w.captured()), w.shape(), w.written()));
            case Lazy l -> traceAndRun(args, false).result();
            case SymbolicGraph g -> runSymbolic(g, args);
        };
    }

    /**
     * Runs a symbolic graph at the sizes of {@code args}. A size seen for the first time is
     * checked before use: the user's code is traced once more without data at that size
     * and must give exactly the template's instantiation. Code that branches on a size
     * therefore never gets a graph recorded for other sizes; it gets its own trace, and
     * the mismatch is reported by explain.
     */
    private Object runSymbolic(SymbolicGraph g, Object[] args) {
        long[] symbols = g.signature().match(args);
        List<Long> key = java.util.Arrays.stream(symbols).boxed().toList();
        GraphExecutable exe = g.instances().get(key);
        if (exe == null) {
            long t0 = System.nanoTime();
            Graph probed = probe(args, g.signature().shapesAt(symbols), g.captured());
            if (probed == null) return traceAndRun(args, false).result();
            Graph instance = g.template().instantiate(symbols);
            if (!probed.equals(instance)) {
                events.add(new CompileEvent(g.signature().toString(), "the graph traced at sizes " + key
                        + " differs from the symbolic template (the code depends on these sizes); compiled it separately",
                        "", List.of(probed), List.of(), System.nanoTime() - t0, Phases.NONE, null));
                exe = compile(probed, weights(args, g.captured().length));
            } else {
                exe = g.family() != null ? g.family() : compile(probed, weights(args, g.captured().length));
            }
            g.instances().put(key, exe);
        }
        return g.shape().rebuild(runGraph(exe, bind(args, g.captured()), g.shape(), g.written()));
    }

    /** Runs a whole-function graph: the function's outputs, its in-place updates done ({@code written}: the inputs they update). */
    private static Tensor[] runGraph(GraphExecutable exe, Tensor[] inputs, OutputShape shape, int[] written) {
        return TraceSession.withoutWrites(exe.run(inputs), shape.count(), written, inputs);
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
                if (e.matches(args)) return run(e, args);
            }
            if (eagerFallback || entries.length >= options.recompileLimit()) {
                if (!eagerFallback) {
                    eagerFallback = true;
                    Log.LOG.log(System.Logger.Level.WARNING, "kiln: " + name + " hit the recompile limit ("
                            + options.recompileLimit() + " signatures); running it eagerly from now on. Last guard failure: "
                            + reason(args));
                }
                return body.apply(args);
            }
            String reason = reason(args);
            long t0 = System.nanoTime();
            Traced traced = traceAndRun(args, true);
            Entry entry;
            String dynamicDims = "";
            if (traced.session().hadBreaks()) {
                entry = new Lazy(Signature.of(args));
            } else {
                boolean[][] symbolic = symbolicDims(args);
                SymbolicGraph sg = symbolic == null ? null : learnTemplate(args, symbolic, traced);
                if (sg != null) {
                    sg.instances().put(java.util.Arrays.stream(sg.signature().baseValues()).boxed().toList(),
                            sg.family() != null ? sg.family() : traced.executable());
                    entry = sg;
                    dynamicDims = sg.signature().describeSymbols();
                    if (sg.family() == null && options.backend() != Backend.EAGER) {
                        dynamicDims += "; the " + options.backend() + " backend compiles each size on its own (its programs for the"
                                + " traced sizes differ other than in sizes)";
                    }
                } else {
                    entry = new WholeGraph(Signature.of(args), traced.graph(), traced.executable(), traced.captured(), traced.shape(),
                            traced.written());
                }
            }
            long nanos = System.nanoTime() - t0;
            String sigText = entry instanceof SymbolicGraph sg ? sg.signature().toString() : Signature.of(args).toString();
            events.add(new CompileEvent(sigText, reason, dynamicDims,
                    traced.session().hadBreaks() ? traced.session().segments() : List.of(traced.graph()),
                    traced.session().breaks(), nanos, traced.phases(),
                    entry instanceof SymbolicGraph sg && sg.family() != null ? sg.family() : traced.executable()));
            Entry[] next = Arrays.copyOf(entries, entries.length + 1);
            next[entries.length] = entry;
            entries = next;
            return traced.result();
        }
    }

    /**
     * Which dimensions to make symbolic for this call: with {@code ON} every dimension of
     * size 2 or more; with {@code AUTO} those in which this call differs from an earlier
     * static signature that is otherwise the same; null for none.
     */
    private boolean[][] symbolicDims(Object[] args) {
        boolean[][] out = null;
        switch (options.dynamic()) {
            case OFF -> { }
            case ON -> {
                out = new boolean[args.length][];
                boolean any = false;
                for (int i = 0; i < args.length; i++) {
                    if (args[i] instanceof Tensor t) {
                        out[i] = new boolean[t.rank()];
                        for (int d = 0; d < t.rank(); d++) any |= out[i][d] = t.size(d) >= 2;
                    }
                }
                if (!any) out = null;
            }
            case AUTO -> {
                for (Entry e : entries) {
                    if (e instanceof WholeGraph w) {
                        boolean[][] diff = w.signature().differingDims(args);
                        if (diff != null) {
                            for (int i = 0; i < args.length; i++) {
                                if (diff[i] == null) continue;
                                for (int d = 0; d < diff[i].length; d++) diff[i][d] &= ((Tensor) args[i]).size(d) >= 2;
                            }
                            out = diff;
                            break;
                        }
                    }
                }
            }
        }
        return out;
    }

    /**
     * Learns how sizes flow through the graph by tracing it again (without data) at
     * the perturbed sizes of {@link ShapeTemplate#samplePoints}. Returns
     * null when the traces disagree in structure, a size is not affine in the symbols,
     * the code needs data, or a capture differs.
     */
    private SymbolicGraph learnTemplate(Object[] args, boolean[][] symbolic, Traced base) {
        SymbolicSignature sig = SymbolicSignature.of(args, symbolic, argNames);
        if (sig.symbols() == 0) return null;
        long[] baseValues = sig.baseValues();
        List<long[]> samples = ShapeTemplate.samplePoints(baseValues);
        List<Graph> graphs = new ArrayList<>();
        graphs.add(base.graph());
        for (int s = 1; s < samples.size(); s++) {
            Graph g = probe(args, sig.shapesAt(samples.get(s)), base.captured());
            if (g == null) return null;
            graphs.add(g);
        }
        ShapeTemplate template = ShapeTemplate.fit(graphs, baseValues);
        if (template == null) return null;
        GraphExecutable family = options.backend() == Backend.EAGER ? null
                : compilerFor(options.backend()).compileFamily(graphs, baseValues, weights(args, base.captured().length)).orElse(null);
        return new SymbolicGraph(sig, template, base.captured(), base.shape(), base.written(), new InstanceCache(), family);
    }

    /** Traces the body on data-less inputs of the given shapes; null if that fails or captures differ. */
    private Graph probe(Object[] args, dev.kiln.tensor.Shape[] shapes, Tensor[] expectedCaptures) {
        TraceSession session = new TraceSession(true, this::compileSegment);
        Object[] symbolic = new Object[args.length];
        int t = 0;
        for (int i = 0; i < args.length; i++) {
            if (args[i] instanceof Tensor x) {
                dev.kiln.tensor.Shape shape = shapes[t++];
                // Arguments whose size does not move keep their identity, so code that reads them
                // from a field (a module's parameters) still finds the graph input they are.
                symbolic[i] = shape.equals(x.shape()) ? session.input(x)
                        : session.inputMeta(new dev.kiln.ops.TensorMeta(x.dtype(), shape));
            } else {
                symbolic[i] = args[i];
            }
        }
        try {
            Object out = Dispatch.intercepting(session, () -> body.apply(symbolic));
            Graph g = session.graph(OutputShape.of(name, out).flatten(out));
            List<Tensor> captured = session.capturedInputs();
            if (captured.size() != expectedCaptures.length) return null;
            for (int i = 0; i < expectedCaptures.length; i++) if (captured.get(i) != expectedCaptures[i]) return null;
            return g;
        } catch (RuntimeException e) {
            return null;
        }
    }

    private String reason(Object[] args) {
        Entry[] es = entries;
        if (es.length == 0) return "first call";
        for (int i = es.length - 1; i >= 0; i--) {
            switch (es[i]) {
                case WholeGraph w -> { return "guard failed: " + w.signature().explainMismatch(args, argNames); }
                case Lazy l -> { return "guard failed: " + l.signature().explainMismatch(args, argNames); }
                case SymbolicGraph g -> { }
            }
        }
        return "guard failed: outside the symbolic signature " + ((SymbolicGraph) es[es.length - 1]).signature();
    }

    private record Traced(TraceSession session, Object result, Graph graph, GraphExecutable executable,
                          Tensor[] captured, OutputShape shape, int[] written, Phases phases) {}

    /** Runs the body on symbolic stand-ins and produces this call's result (and the graph when there was no break). */
    private Traced traceAndRun(Object[] args, boolean keepGraph) {
        long t0 = System.nanoTime();
        TraceSession session = new TraceSession(options.fullGraph(), this::compileSegment);
        Object[] symbolic = new Object[args.length];
        for (int i = 0; i < args.length; i++) symbolic[i] = args[i] instanceof Tensor t ? session.input(t) : args[i];
        Object out = Dispatch.intercepting(session, () -> body.apply(symbolic));
        OutputShape shape = OutputShape.of(name, out);
        List<Tensor> outputs = shape.flatten(out);
        if (!session.hadBreaks() && keepGraph) {
            Graph g = session.graph(outputs);
            int[] written = session.writtenInputs();
            Tensor[] captured = session.capturedInputs().toArray(Tensor[]::new);
            long traced = System.nanoTime();
            GraphExecutable exe = compile(g, weights(args, captured.length));
            long compiled = System.nanoTime();
            Tensor[] values = runGraph(exe, bind(args, captured), shape, written);
            Phases phases = new Phases(traced - t0, compiled - traced, System.nanoTime() - compiled);
            return new Traced(session, shape.rebuild(values), g, exe, captured, shape, written, phases);
        }
        Object result = shape.rebuild(session.finish(outputs));
        return new Traced(session, result, null, null, null, shape, new int[0], new Phases(System.nanoTime() - t0, 0, 0));
    }

    /** A segment between graph breaks: its inputs are whatever the code computed before it, so none is taken for a weight. */
    private GraphExecutable compileSegment(Graph g) {
        return segmentCache.computeIfAbsent(g.hash(), h -> compile(g, Set.of()));
    }

    private GraphExecutable compile(Graph g, Set<Integer> weights) {
        if (options.backend() == Backend.EAGER) return new GraphInterpreter(g);
        return compilerFor(options.backend()).compile(g, weights);
    }

    /** The module that provides each non-eager backend, for the message when it is missing. */
    private static final java.util.Map<Backend, String> BACKEND_MODULES = java.util.Map.of(Backend.NPU, "dev.kiln:graph-optimizer");

    private static final ConcurrentHashMap<Backend, GraphCompiler> COMPILERS = new ConcurrentHashMap<>();

    private static final Set<Backend> PREPARING = ConcurrentHashMap.newKeySet();

    /**
     * Loads and {@linkplain GraphCompiler#prepare prepares} {@code backend}'s compiler on a
     * daemon thread, once: its set-up (for the NPU backend, the fingerprint of the compiler's
     * code that cache keys carry, a SHA-256 over its jars, and opening the kernel cache) then
     * overlaps with creating the module proxy and tracing the first call, instead of following
     * them. A failure is left for the first call to report, with its message.
     */
    static void prepareBackend(Backend backend) {
        // The eager backend has no compiler to prepare.
        if (backend == Backend.EAGER || !PREPARING.add(backend)) return;
        Thread t = new Thread(() -> {
            try {
                compilerFor(backend).prepare();
            } catch (RuntimeException | LinkageError e) {
                Log.LOG.log(System.Logger.Level.DEBUG, "preparing backend " + backend + " failed", e);
            }
        }, "kiln-prepare-" + backend);
        t.setDaemon(true);
        t.start();
    }

    private static GraphCompiler compilerFor(Backend backend) {
        return COMPILERS.computeIfAbsent(backend, b -> {
            for (GraphCompiler c : java.util.ServiceLoader.load(GraphCompiler.class, CompiledFunction.class.getClassLoader())) {
                if (c.backend() == b) return c;
            }
            throw new KilnException("backend " + b + " is not available: no dev.kiln.trace.GraphCompiler for it on the class path; add "
                    + BACKEND_MODULES.getOrDefault(b, "the module that provides it") + " as a dependency");
        });
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
