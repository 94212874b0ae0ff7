package dev.kiln;

/** What runs a compiled graph. */
public enum Backend {
    /** Runs the traced graph op by op on the eager kernels: for debugging and as the reference. */
    EAGER
}
