package dev.kiln;

/**
 * How {@link Kiln#compile} compiles, in the style of torch.compile's arguments.
 * Immutable: each {@code with} method returns a new value.
 */
public record CompileOptions(Backend backend, int recompileLimit, boolean fullGraph) {

    public CompileOptions {
        if (backend == null) throw new IllegalArgumentException("backend must not be null");
        if (recompileLimit < 1) throw new IllegalArgumentException("recompileLimit must be at least 1, got " + recompileLimit);
    }

    /** Eager backend, recompile limit 8, graph breaks allowed. */
    public static CompileOptions defaults() { return new CompileOptions(Backend.EAGER, 8, false); }

    public CompileOptions backend(Backend b) { return new CompileOptions(b, recompileLimit, fullGraph); }

    /** After this many distinct input signatures, warn once and run eagerly. */
    public CompileOptions recompileLimit(int n) { return new CompileOptions(backend, n, fullGraph); }

    /** When true, a graph break is an error instead of a split. */
    public CompileOptions fullGraph(boolean f) { return new CompileOptions(backend, recompileLimit, f); }
}
