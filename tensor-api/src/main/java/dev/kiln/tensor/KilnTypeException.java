package dev.kiln.tensor;

/** An op was given dtypes it does not accept, or that do not promote. */
public class KilnTypeException extends KilnException {
    public KilnTypeException(String message) { super(message); }
}
