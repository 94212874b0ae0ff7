package dev.kiln.tensor;

/** An op was given shapes it cannot work with. */
public class KilnShapeException extends KilnException {
    public KilnShapeException(String message) { super(message); }
}
