package dev.kiln;

/** What runs a compiled graph. */
public enum Backend {
    /** Runs the traced graph op by op on the eager kernels: for debugging and as the reference. */
    EAGER,
    /**
     * The virtual NPU: the graph is optimised, pointwise chains are fused into tile programs
     * that move each value between DRAM and on-chip SRAM once. Needs {@code dev.kiln:graph-optimizer}
     * on the class path.
     */
    NPU
}
