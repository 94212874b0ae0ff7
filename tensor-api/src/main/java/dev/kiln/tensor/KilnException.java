package dev.kiln.tensor;

/** Base of Kiln's user-facing errors. Messages name the op, the shapes and the offending dimension. */
public class KilnException extends RuntimeException {
    public KilnException(String message) { super(message); }
    public KilnException(String message, Throwable cause) { super(message, cause); }
}
