package dev.kiln;

/**
 * How {@link Kiln#compile} compiles, in the style of torch.compile's arguments.
 * Immutable: each {@code with} method returns a new value.
 */
public record CompileOptions(Backend backend, Dynamic dynamic, int recompileLimit, boolean fullGraph, boolean freezeWeights) {

    public CompileOptions {
        if (backend == null) throw new IllegalArgumentException("backend must not be null");
        if (dynamic == null) throw new IllegalArgumentException("dynamic must not be null");
        if (recompileLimit < 1) throw new IllegalArgumentException("recompileLimit must be at least 1, got " + recompileLimit);
    }

    /**
     * The NPU backend (which needs {@code dev.kiln:graph-optimizer} on the class path),
     * automatic dynamic shapes, recompile limit 8, graph breaks allowed.
     */
    public static CompileOptions defaults() { return new CompileOptions(Backend.NPU, Dynamic.AUTO, 8, false, false); }

    public CompileOptions backend(Backend b) { return new CompileOptions(b, dynamic, recompileLimit, fullGraph, freezeWeights); }

    /** Which dimensions are symbolic: {@link Dynamic#OFF}, {@link Dynamic#ON} or {@link Dynamic#AUTO}. */
    public CompileOptions dynamic(Dynamic d) { return new CompileOptions(backend, d, recompileLimit, fullGraph, freezeWeights); }

    /** After this many compiled signatures, warn once and run eagerly. */
    public CompileOptions recompileLimit(int n) { return new CompileOptions(backend, dynamic, n, fullGraph, freezeWeights); }

    /** When true, a graph break is an error instead of a split. */
    public CompileOptions fullGraph(boolean f) { return new CompileOptions(backend, dynamic, recompileLimit, f, freezeWeights); }

    /**
     * When true, the weights (a module's parameters, and tensors a function captures from
     * outside) are constants once bound, as with torch inductor's freezing: the backend may
     * derive forms of them once (transposed into the layout a matmul reads fastest, stacked
     * q, k and v weights) and reuse them for as long as the same tensors are bound. Binding
     * other tensors (assigning a parameter) is seen, and so is a write into a bound weight's
     * memory {@linkplain dev.kiln.tensor.Storage#markWritten marked} as such; an unmarked
     * write is not. Results agree with the unfrozen program to rounding.
     *
     * <p>Without freezing, the weights are read where they are at every call; a matmul still
     * keeps its weight packed while the same unchanged memory comes back (the same rule).
     */
    public CompileOptions freezeWeights(boolean f) { return new CompileOptions(backend, dynamic, recompileLimit, fullGraph, f); }

    // Written out: a record's generated equals, hashCode and toString are bootstrapped on
    // their first call, 4 to 15 ms each in a fresh JVM, and these three are on the path of
    // every first compiled call (module proxies are found, and named, by the options).

    @Override
    public boolean equals(Object o) {
        return o instanceof CompileOptions c && backend == c.backend && dynamic == c.dynamic && recompileLimit == c.recompileLimit
                && fullGraph == c.fullGraph && freezeWeights == c.freezeWeights;
    }

    @Override
    public int hashCode() {
        int h = backend.ordinal();
        h = 31 * h + dynamic.ordinal();
        h = 31 * h + recompileLimit;
        h = 31 * h + Boolean.hashCode(fullGraph);
        return 31 * h + Boolean.hashCode(freezeWeights);
    }

    /** The same text in every JVM (enum names, not hash codes): a module proxy's name is made from it. */
    @Override
    public String toString() {
        return new StringBuilder("CompileOptions[backend=").append(backend.name()).append(", dynamic=").append(dynamic.name())
                .append(", recompileLimit=").append(recompileLimit).append(", fullGraph=").append(fullGraph)
                .append(", freezeWeights=").append(freezeWeights).append(']').toString();
    }
}
