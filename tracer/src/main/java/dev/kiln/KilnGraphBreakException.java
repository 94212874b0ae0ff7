package dev.kiln;

import dev.kiln.tensor.KilnException;

/** A graph break in a function compiled with {@code fullGraph(true)}. */
public class KilnGraphBreakException extends KilnException {
    public KilnGraphBreakException(String message) { super(message); }
}
