package dev.kiln.npu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * One launch's chunks of [0, n), taken in turn by whichever threads run {@link #work}: the
 * caller and the team's workers, or the pool's. Chunk {@code c} is always the range
 * [n c / chunks, n (c + 1) / chunks), so results do not depend on which thread ran it.
 */
final class ChunkJob {
    /** A parked thread looks again at least this often, whatever happens to its wake-up. */
    static final long PARK_NANOS = 100_000_000;

    private final long n;
    private final int chunks;
    private final Parallel.RangeBody body;
    private final Thread caller;
    private final AtomicInteger next = new AtomicInteger(), remaining;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();

    ChunkJob(long n, int chunks, Parallel.RangeBody body, Thread caller) {
        this.n = n;
        this.chunks = chunks;
        this.body = body;
        this.caller = caller;
        this.remaining = new AtomicInteger(chunks);
    }

    /** Takes chunks until none is left; a chunk's failure is kept for {@link #rethrow}. */
    void work() {
        for (int c; (c = next.getAndIncrement()) < chunks; ) {
            try {
                body.run(n * c / chunks, n * (c + 1) / chunks);
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            } finally {
                if (remaining.decrementAndGet() == 0) LockSupport.unpark(caller);
            }
        }
    }

    /** Called by the caller: returns once every chunk has ended, spinning for up to {@code spinNanos} before parking. */
    void awaitDone(long spinNanos) {
        long spinEnd = System.nanoTime() + spinNanos;
        while (remaining.get() > 0) {
            if (System.nanoTime() < spinEnd) Thread.onSpinWait();
            else LockSupport.parkNanos(this, PARK_NANOS);
        }
    }

    /** Throws the first chunk's failure, if any: the chunk's own exception, not a copy. */
    void rethrow() {
        Throwable t = failure.get();
        if (t instanceof RuntimeException e) throw e;
        if (t instanceof Error e) throw e;
        if (t != null) throw new IllegalStateException(t);
    }
}
