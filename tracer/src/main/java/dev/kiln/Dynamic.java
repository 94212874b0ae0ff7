package dev.kiln;

/** Which tensor dimensions a compiled function treats as symbolic, as torch.compile's {@code dynamic}. */
public enum Dynamic {
    /** Every size is specialised: a new size compiles a new graph. */
    OFF,
    /** Every dimension of size 2 or more is symbolic from the first call (equal sizes share a symbol). */
    ON,
    /** A dimension becomes symbolic once it is seen with a second size. The default. */
    AUTO
}
