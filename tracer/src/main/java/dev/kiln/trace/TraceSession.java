package dev.kiln.trace;

import dev.kiln.KilnGraphBreakException;
import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Storage;
import dev.kiln.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * One run of user code under tracing. Ops on symbolic tensors are recorded into the
 * current segment's graph. Concrete tensors the code uses (captured from outside
 * the call) are lifted as extra graph inputs, by reference, never frozen as constants.
 *
 * <p>When the host asks for data of a symbolic tensor (a graph break), the segment
 * so far is compiled and run, every value it produced becomes concrete, and tracing
 * continues in a new segment whose inputs include those values.
 */
public final class TraceSession implements Dispatch.Interceptor {

    /** A symbolic tensor's link to the value it stands for. */
    static final class Handle {
        final TraceSession session;
        final int segment;
        /** The value it stands for: moves on when an in-place op updates it. */
        ValueRef ref;
        Tensor concrete;

        Handle(TraceSession session, int segment, ValueRef ref) {
            this.session = session;
            this.segment = segment;
            this.ref = ref;
        }
    }

    /** A graph break: why, and where in the user's code. */
    public record GraphBreak(String reason, String sourceLine) {}

    /** An in-place op of the current segment updated graph input {@code input}; {@code value} is its latest version. */
    private record Write(int input, ValueRef value) {}

    private final boolean fullGraph;
    private final Function<Graph, GraphExecutable> compiler;
    /** Storages from this serial on were made during the call. */
    private final long firstSerialOfCall = Storage.nextSerial();
    private final List<GraphBreak> breaks = new ArrayList<>();
    private final List<Graph> segments = new ArrayList<>();

    private int segment;
    private GraphBuilder builder = new GraphBuilder();
    private List<Tensor> boundInputs = new ArrayList<>();
    private Map<Object, ValueRef> lifted = new IdentityHashMap<>();
    private List<Handle> handles = new ArrayList<>();
    private List<Write> writes = new ArrayList<>();
    /** The storages of the graph inputs that {@link #writes} update. */
    private Set<Storage> writtenStorages = Collections.newSetFromMap(new IdentityHashMap<>());
    private int declaredInputs;

    /**
     * @param fullGraph a graph break throws instead of splitting
     * @param compiler  makes a segment runnable (a backend, possibly through a cache)
     */
    public TraceSession(boolean fullGraph, Function<Graph, GraphExecutable> compiler) {
        this.fullGraph = fullGraph;
        this.compiler = compiler;
    }

    /** Declares the next graph input, bound to {@code concrete} for this run; returns its symbolic stand-in. */
    public Tensor input(Tensor concrete) {
        Tensor s = inputMeta(concrete.meta());
        boundInputs.set(boundInputs.size() - 1, concrete);
        lifted.put(concrete, ((Handle) s.symbolicHandle()).ref);
        return s;
    }

    /**
     * Declares a graph input with no data, for a probe trace that only records the graph
     * (used to learn how sizes flow through it); asking for data aborts the probe.
     */
    public Tensor inputMeta(TensorMeta meta) {
        if (segment != 0 || declaredInputs != boundInputs.size()) {
            throw new IllegalStateException("inputs must be declared before any op is traced");
        }
        ValueRef ref = builder.input(meta);
        boundInputs.add(null);
        declaredInputs++;
        return symbolic(ref, meta);
    }

    /** Thrown when a probe trace needs data it does not have. */
    static final class ProbeNeedsData extends RuntimeException {
        ProbeNeedsData() { super("a probe trace needs tensor data", null, false, false); }
    }

    private Tensor symbolic(ValueRef ref, TensorMeta meta) {
        Handle h = new Handle(this, segment, ref);
        handles.add(h);
        return Tensor.symbolic(meta, h);
    }

    @Override
    public Tensor[] apply(Op op, Tensor[] inputs, List<TensorMeta> outputs) {
        if (op instanceof Op.InPlace inPlace) return applyInPlace(inPlace, inputs, outputs);
        if (!writtenStorages.isEmpty()) {
            for (Tensor t : inputs) {
                if (entersAfterWrite(t)) {
                    // Its read has no order with the write in the graph: finish the write first.
                    breakGraph("a " + t.meta() + " tensor that shares memory with an input updated in place was read");
                    break;
                }
            }
        }
        List<ValueRef> refs = new ArrayList<>(inputs.length);
        for (Tensor t : inputs) refs.add(refOf(t));
        List<ValueRef> outs = builder.apply(op, refs, outputs);
        Tensor[] result = new Tensor[outs.size()];
        for (int i = 0; i < result.length; i++) result[i] = symbolic(outs.get(i), outputs.get(i));
        return result;
    }

    /** The concrete tensor {@code t} would enter the graph as, when it is not in it yet; else null. */
    private Tensor entering(Tensor t) {
        if (t.isConcrete()) return lifted.containsKey(t) ? null : t;
        if (t.symbolicHandle() instanceof Handle h && h.session == this && h.segment != segment && !lifted.containsKey(h)) return h.concrete;
        return null;
    }

    /** True when {@code t} would become a graph input over memory an in-place op of this segment writes. */
    private boolean entersAfterWrite(Tensor t) {
        Tensor c = entering(t);
        return c != null && writtenStorages.contains(c.storage());
    }

    /**
     * Records an in-place op when each tensor it updates is a graph input of this segment
     * (or about to become one) whose memory no other input shares, or a value this segment
     * computed (not a view) that nothing has read yet; the updated values replace the old ones
     * (and views of them) for the rest of the trace, and updated inputs become extra graph
     * outputs the executable writes in place. Anything else is a graph break, after which the
     * op runs eagerly.
     */
    private Tensor[] applyInPlace(Op.InPlace op, Tensor[] inputs, List<TensorMeta> outputs) {
        String obstacle = null;
        for (int j : op.overwrites()) {
            obstacle = inPlaceObstacle(inputs, j);
            if (obstacle != null) break;
        }
        if (obstacle != null) {
            if (boundInputs.contains(null)) throw new ProbeNeedsData();
            breakGraph(op.name() + " updates " + obstacle + " in place");
            Tensor[] concrete = new Tensor[inputs.length];
            for (int i = 0; i < inputs.length; i++) concrete[i] = inputs[i].isConcrete() ? inputs[i] : materialize(inputs[i]);
            return Dispatch.intercepting(null, () -> Dispatch.apply(op, concrete));
        }
        List<ValueRef> refs = new ArrayList<>(inputs.length);
        for (Tensor t : inputs) refs.add(refOf(t));
        List<ValueRef> outs = builder.apply(op, refs, outputs);
        for (int k = 0; k < outs.size(); k++) {
            ValueRef old = refs.get(op.overwrites().get(k)), updated = outs.get(k);
            // The tensors that stand for the value, or for views of it, now stand for the updated value or
            // the same views of it: eagerly a view shares the memory the op writes.
            Map<ValueRef, ValueRef> replayed = new java.util.HashMap<>(Map.of(old, updated));
            for (Handle h : handles) {
                if (h.segment != segment) continue;
                ValueRef now = viewOfUpdated(h.ref, replayed);
                if (now != null) h.ref = now;
            }
            for (Map.Entry<Object, ValueRef> e : lifted.entrySet()) if (e.getValue().equals(old)) e.setValue(updated);
            if (builder.producer(old) instanceof Node.Input in) {
                writes.add(new Write(in.index(), updated));
                Tensor bound = boundInputs.get(in.index());
                if (bound != null) writtenStorages.add(bound.storage());
            } else {
                for (int w = 0; w < writes.size(); w++) if (writes.get(w).value().equals(old)) writes.set(w, new Write(writes.get(w).input(), updated));
            }
        }
        Tensor[] result = new Tensor[outs.size()];
        for (int i = 0; i < result.length; i++) result[i] = symbolic(outs.get(i), outputs.get(i));
        return result;
    }

    /**
     * {@code v} taken over the updated value when it is the old value or a view (of a view...)
     * of it, else null; {@code replayed} maps old values to new ones and keeps the new views.
     */
    private ValueRef viewOfUpdated(ValueRef v, Map<ValueRef, ValueRef> replayed) {
        ValueRef known = replayed.get(v);
        if (known != null) return known;
        if (!(builder.producer(v) instanceof Node.Apply ap && ap.op() instanceof Op.ViewOp)) return null;
        ValueRef base = viewOfUpdated(ap.inputs().getFirst(), replayed);
        if (base == null) return null;
        ValueRef view = builder.apply(ap.op(), List.of(base), ap.outputs()).getFirst();
        replayed.put(v, view);
        return view;
    }

    /** Why input {@code j} cannot be updated in place inside the graph, or null when it can. */
    private String inPlaceObstacle(Tensor[] inputs, int j) {
        Tensor t = inputs[j];
        ValueRef ref;
        Tensor memory;
        if (t.isConcrete()) {
            ref = lifted.get(t);
            memory = t;
        } else if (t.symbolicHandle() instanceof Handle h && h.session == this) {
            ref = h.segment == segment ? h.ref : lifted.get(h);
            memory = h.segment == segment ? null : h.concrete;
        } else {
            return null;
        }
        // A value the graph computed must have no reader yet: the program updates it in its own memory,
        // where a read of the old value that a pass moved after the update (neg(neg(x)) is x) would see the
        // new. An input may have been read (those reads get a copy made first) and viewed (its views are
        // taken again over the updated value).
        if (ref != null && builder.producer(ref) instanceof Node.Apply ap) {
            if (ap.op() instanceof Op.ViewOp) return "a view computed in the graph";
            return builder.isRead(ref) ? "a value the graph has already read" : null;
        }
        int position = ref == null ? -1 : ((Node.Input) builder.producer(ref)).index();
        if (position >= 0) memory = boundInputs.get(position);
        // A graph input: no other input may share its memory, or reads of it would not be ordered with the write.
        if (memory == null) return null;
        String shared = "an input whose memory another input shares";
        for (int i = 0; i < boundInputs.size(); i++) {
            Tensor bound = boundInputs.get(i);
            if (i != position && bound != null && bound.storage() == memory.storage()) return shared;
        }
        for (int i = 0; i < inputs.length; i++) {
            Tensor other = i == j ? null : inputs[i].isConcrete() ? inputs[i] : entering(inputs[i]);
            if (other != null && other.storage() == memory.storage()) return shared;
        }
        return null;
    }

    private ValueRef refOf(Tensor t) {
        if (t.isConcrete()) return lift(t, t);
        if (!(t.symbolicHandle() instanceof Handle h) || h.session != this) {
            throw new KilnException("a traced tensor " + t.meta() + " from another compiled call was used here;"
                    + " pass it as an argument instead of keeping it between calls");
        }
        return h.segment == segment ? h.ref : lift(h, h.concrete);
    }

    /** Makes a concrete tensor an input of the current segment (once per tensor or handle). */
    private ValueRef lift(Object key, Tensor concrete) {
        ValueRef ref = lifted.get(key);
        if (ref == null && key == concrete && concrete.storage().serial() >= firstSerialOfCall) madeDuringCall(concrete);
        if (ref == null) {
            ref = builder.input(concrete.meta());
            boundInputs.add(concrete);
            lifted.put(key, ref);
        }
        return ref;
    }

    @Override
    public Tensor materialize(Tensor t) {
        Handle h = (Handle) t.symbolicHandle();
        if (h.session != this) {
            throw new KilnException("a traced tensor " + t.meta() + " from another compiled call was used here");
        }
        if (h.concrete == null) {
            if (boundInputs.contains(null)) throw new ProbeNeedsData();
            breakGraph("data of a " + t.meta() + " tensor was read on the host");
        }
        return h.concrete;
    }

    /**
     * A tensor the code made from host data during the call (not by an op: {@code Tensor.of},
     * {@code randn}) enters the graph. Replayed, the graph would keep this call's tensor while
     * the code would make another, so the function is not replayed: its code runs on every call,
     * as after a graph break, and the graph keeps going here.
     */
    private void madeDuringCall(Tensor t) {
        String reason = "a " + t.meta() + " tensor made from host data during the call is a graph input, so calls re-run the code"
                + " (pass it as an argument, or make it with tensor ops, to replay one graph)";
        String where = userSourceLine();
        if (fullGraph) throw new KilnGraphBreakException("graph break in a fullGraph compile: " + reason + " at " + where);
        breaks.add(new GraphBreak(reason, where));
    }

    private void breakGraph(String reason) {
        String where = userSourceLine();
        if (fullGraph) {
            throw new KilnGraphBreakException("graph break in a fullGraph compile: " + reason + " at " + where
                    + "; remove the host access or compile with fullGraph(false)");
        }
        breaks.add(new GraphBreak(reason, where));
        List<ValueRef> all = new ArrayList<>();
        for (Handle h : handles) if (h.segment == segment) all.add(h.ref);
        Tensor[] values = runSegment(all);
        int i = 0;
        for (Handle h : handles) if (h.segment == segment) h.concrete = values[i++];
        segment++;
        builder = new GraphBuilder();
        boundInputs = new ArrayList<>();
        lifted = new IdentityHashMap<>();
        handles = new ArrayList<>();
        writes = new ArrayList<>();
        writtenStorages = Collections.newSetFromMap(new IdentityHashMap<>());
    }

    private Tensor[] runSegment(List<ValueRef> outputs) {
        Graph g = builder.build(withWrites(outputs));
        segments.add(g);
        Tensor[] inputs = boundInputs.toArray(Tensor[]::new);
        Tensor[] values = Dispatch.intercepting(null, () -> compiler.apply(g).run(inputs));
        return withoutWrites(values, outputs.size(), writtenInputs(), inputs);
    }

    /** {@code outputs}, then the latest version of each graph input an in-place op updated. */
    private List<ValueRef> withWrites(List<ValueRef> outputs) {
        if (writes.isEmpty()) return outputs;
        List<ValueRef> all = new ArrayList<>(outputs);
        for (Write w : writes) all.add(w.value());
        return all;
    }

    /**
     * The graph inputs that in-place ops update, in the order of the extra outputs that
     * follow the function's own in {@link #graph}: their memory holds the update when the
     * graph has run.
     */
    public int[] writtenInputs() {
        int[] out = new int[writes.size()];
        for (int i = 0; i < out.length; i++) out[i] = writes.get(i).input();
        return out;
    }

    /**
     * The function's own outputs among a graph's {@code values}, checking that each extra
     * output (an updated input) is that input's memory: the executable updated it in place.
     */
    public static Tensor[] withoutWrites(Tensor[] values, int outputs, int[] writtenInputs, Tensor[] inputs) {
        if (writtenInputs.length == 0) return values;
        for (int i = 0; i < writtenInputs.length; i++) {
            Tensor input = inputs[writtenInputs[i]], updated = values[outputs + i];
            if (updated.storage() != input.storage() || !updated.layout().equals(input.layout())) {
                throw new IllegalStateException("the executable did not update graph input " + writtenInputs[i] + " " + input.meta()
                        + " in place");
            }
        }
        return Arrays.copyOf(values, outputs);
    }

    public boolean hadBreaks() { return !breaks.isEmpty(); }
    public List<GraphBreak> breaks() { return List.copyOf(breaks); }
    /** Graphs of the segments run so far (all of them after {@link #finish}). */
    public List<Graph> segments() { return List.copyOf(segments); }

    /** The single graph of a run without breaks, returning {@code outputs}. */
    public Graph graph(List<Tensor> outputs) {
        if (hadBreaks()) throw new IllegalStateException("a run with graph breaks has no single graph");
        List<ValueRef> refs = new ArrayList<>();
        for (Tensor t : outputs) refs.add(refOf(t));
        return builder.build(withWrites(refs));
    }

    /** Concrete tensors bound to the graph's inputs beyond the declared ones (captured tensors), in input order. */
    public List<Tensor> capturedInputs() {
        return List.copyOf(boundInputs.subList(segment == 0 ? declaredInputs : 0, boundInputs.size()));
    }

    /** Runs what remains after the last break and returns the concrete outputs. */
    public Tensor[] finish(List<Tensor> outputs) {
        List<ValueRef> refs = new ArrayList<>();
        Tensor[] result = new Tensor[outputs.size()];
        List<Integer> pending = new ArrayList<>();
        for (int i = 0; i < result.length; i++) {
            Tensor t = outputs.get(i);
            if (t.isConcrete()) result[i] = t;
            else if (((Handle) t.symbolicHandle()).concrete != null && ((Handle) t.symbolicHandle()).segment != segment) {
                result[i] = ((Handle) t.symbolicHandle()).concrete;
            } else {
                refs.add(refOf(t));
                pending.add(i);
            }
        }
        if (!pending.isEmpty() || !writes.isEmpty()) {
            Tensor[] values = runSegment(refs);
            for (int i = 0; i < values.length; i++) result[pending.get(i)] = values[i];
        }
        return result;
    }

    /** Where Kiln's own classes are loaded from: frames from anywhere else are the user's. */
    private static final java.util.Set<Object> KILN_CODE = java.util.Set.of(
            codeSource(Tensor.class), codeSource(TraceSession.class));

    private static Object codeSource(Class<?> c) {
        var cs = c.getProtectionDomain().getCodeSource();
        return cs == null ? c.getModule() : cs.getLocation();
    }

    /** The first stack frame outside Kiln and the JDK: where the user's code asked for data. */
    private static String userSourceLine() {
        return StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE).walk(frames -> frames
                .filter(f -> !isInternal(f.getDeclaringClass()))
                .findFirst()
                .map(f -> f.getClassName().substring(f.getClassName().lastIndexOf('.') + 1) + "." + f.getMethodName()
                        + "(" + f.getFileName() + ":" + f.getLineNumber() + ")")
                .orElse("unknown location"));
    }

    private static boolean isInternal(Class<?> c) {
        String n = c.getName();
        return n.startsWith("java.") || n.startsWith("jdk.") || n.startsWith("net.bytebuddy.") || n.contains("$KilnCompiled$")
                || KILN_CODE.contains(codeSource(c));
    }
}
