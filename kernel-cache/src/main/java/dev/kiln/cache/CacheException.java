package dev.kiln.cache;

/** A cache directory that cannot be used: unsafe permissions, wrong owner, or not creatable. */
public class CacheException extends RuntimeException {
    public CacheException(String message) { super(message); }
    public CacheException(String message, Throwable cause) { super(message, cause); }
}
