package dev.kiln.ops;

import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Tensor;

import java.util.List;
import java.util.ServiceLoader;

/**
 * The single entry point of every tensor operation. In eager mode it infers output
 * metadata from the registry, allocates the outputs and runs the backend's kernel;
 * view ops only compute a new layout. A tracer installs an {@link Interceptor} to
 * record ops instead of running them.
 */
public final class Dispatch {

    /** Receives ops in place of eager execution, for the current thread (the tracer's hook). */
    public interface Interceptor {
        Tensor[] apply(Op op, Tensor[] inputs, List<TensorMeta> outputs);

        /** The concrete value of a symbolic tensor whose data the host asked for (a graph break). */
        Tensor materialize(Tensor symbolic);
    }

    private static final ThreadLocal<Interceptor> INTERCEPTOR = new ThreadLocal<>();

    private Dispatch() {}

    private static final class BackendHolder {
        static final KernelBackend BACKEND = ServiceLoader.load(KernelBackend.class).findFirst().orElseThrow(() ->
                new KilnException("no Kiln kernel backend on the class path: add the dev.kiln:npu-exec dependency"));

        static {
            // The first op: the application is starting, the moment to warm the rest up alongside it.
            BackgroundWarmup.start();
        }
    }

    public static KernelBackend backend() { return BackendHolder.BACKEND; }

    /** Runs {@code body} with {@code interceptor} receiving this thread's ops, restoring the previous one after. */
    public static <T> T intercepting(Interceptor interceptor, java.util.function.Supplier<T> body) {
        Interceptor previous = INTERCEPTOR.get();
        INTERCEPTOR.set(interceptor);
        try {
            return body.get();
        } finally {
            if (previous == null) INTERCEPTOR.remove();
            else INTERCEPTOR.set(previous);
        }
    }

    /**
     * The concrete value of {@code t}: itself when concrete, else whatever the active
     * tracer computes for it (a graph break).
     */
    public static Tensor concrete(Tensor t) {
        if (t.isConcrete()) return t;
        Interceptor interceptor = INTERCEPTOR.get();
        if (interceptor == null) {
            throw new KilnException("a traced tensor " + t.meta() + " was used outside the compiled call that created it");
        }
        return interceptor.materialize(t);
    }

    /** Runs {@code body} eagerly even while a tracer intercepts this thread (for host-side conversions). */
    public static <T> T eagerly(java.util.function.Supplier<T> body) {
        return INTERCEPTOR.get() == null ? body.get() : intercepting(null, body);
    }

    /** True while a tracer intercepts this thread's ops. */
    public static boolean isIntercepting() { return INTERCEPTOR.get() != null; }

    /** Applies an op with one output. */
    public static Tensor apply1(Op op, Tensor... inputs) {
        return apply(op, inputs)[0];
    }

    public static Tensor[] apply(Op op, Tensor... inputs) {
        List<TensorMeta> metas = new java.util.ArrayList<>(inputs.length);
        for (Tensor t : inputs) metas.add(t.meta());
        List<TensorMeta> outs = op.infer(metas);
        Interceptor interceptor = INTERCEPTOR.get();
        if (interceptor != null) return interceptor.apply(op, inputs, outs);
        for (Tensor t : inputs) {
            if (!t.isConcrete()) {
                throw new KilnException(op.name() + ": a traced tensor " + t.meta()
                        + " was used outside the compiled call that created it");
            }
        }
        if (op instanceof Op.ViewOp view) {
            Tensor in = inputs[0];
            Layout l = view.view(in.layout());
            if (l == null) {
                in = runKernel(new Op.Contiguous(), new Tensor[] {in}, List.of(in.meta()))[0];
                l = view.view(in.layout());
            }
            return new Tensor[] {in.withLayout(l)};
        }
        if (op instanceof Op.InPlace inPlace) {
            // The kernel writes the inputs it updates, which are its outputs.
            Tensor[] outputs = new Tensor[outs.size()];
            for (int i = 0; i < outputs.length; i++) outputs[i] = inputs[inPlace.overwrites().get(i)];
            backend().execute(op, inputs, outputs);
            return outputs;
        }
        return runKernel(op, inputs, outs);
    }

    private static Tensor[] runKernel(Op op, Tensor[] inputs, List<TensorMeta> outs) {
        Tensor[] outputs = new Tensor[outs.size()];
        for (int i = 0; i < outputs.length; i++) outputs[i] = Tensor.empty(outs.get(i).dtype(), outs.get(i).shape());
        backend().execute(op, inputs, outputs);
        return outputs;
    }
}
