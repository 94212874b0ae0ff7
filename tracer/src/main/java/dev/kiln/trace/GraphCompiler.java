package dev.kiln.trace;

import dev.kiln.Backend;
import dev.kiln.ir.Graph;

import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * A backend that turns a traced graph into something runnable. Implementations live in
 * other modules and are found with {@link java.util.ServiceLoader}, so the tracer does
 * not depend on them: register one in {@code META-INF/services/dev.kiln.trace.GraphCompiler}.
 */
public interface GraphCompiler {
    /** The backend this compiler implements. */
    Backend backend();

    GraphExecutable compile(Graph g);

    /**
     * {@link #compile} where the graph inputs at {@code weights} (indices) are frozen weights
     * ({@link dev.kiln.CompileOptions#freezeWeights}); by default the same as {@link #compile}.
     */
    default GraphExecutable compile(Graph g, Set<Integer> weights) { return compile(g); }

    /**
     * One executable for every size of a symbolic signature, which reads the sizes from its
     * inputs on each run: {@code graphs} were traced from one function at the symbol values
     * {@link dev.kiln.ir.SizeTemplate#samplePoints}{@code (base)}, in that order, and differ
     * only in sizes. Empty (the default) when this backend compiles each size on its own,
     * or when its programs for the samples do not share one form.
     */
    default Optional<GraphExecutable> compileFamily(List<Graph> graphs, long[] base) { return Optional.empty(); }

    /**
     * Sets up, ahead of the first compile, what it will need: called once per JVM on a
     * background thread as soon as a function or module is compiled for this backend, while
     * the caller goes on to trace. It must not change any result, cache entry or counter.
     */
    default void prepare() {}

    /** {@link #compileFamily} with frozen weights at the input indices {@code weights}; by default the same. */
    default Optional<GraphExecutable> compileFamily(List<Graph> graphs, long[] base, Set<Integer> weights) {
        return compileFamily(graphs, base);
    }
}
