package dev.kiln.ops;

/**
 * One part of Kiln that a fresh JVM should warm up before the application needs it, found
 * with {@link java.util.ServiceLoader}: each module ships its own (the kernels, the tracer
 * and its Byte Buddy proxies, the graph compiler). See {@link BackgroundWarmup}.
 *
 * <p>A warm-up must not change anything the application can observe: no results, no
 * caches on disk, no counters it reads; it only makes the JVM load, link and compile code.
 */
public interface Warmup {
    /** Lower runs first: the parts the first compiled call needs before the kernels it then runs. */
    int order();

    /** Exercises the code paths once; called repeatedly until {@link #rounds()} or the time budget is spent. */
    void round();

    /** Rounds worth running: past them the methods are compiled and more rounds only burn CPU. */
    int rounds();
}
