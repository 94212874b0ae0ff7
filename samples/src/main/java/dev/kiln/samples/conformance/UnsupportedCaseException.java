package dev.kiln.samples.conformance;

/** A case Kiln cannot run at all (an op, attribute or type it lacks): reported as SKIP with this message. */
public final class UnsupportedCaseException extends Exception {
    public UnsupportedCaseException(String message) { super(message); }
}
