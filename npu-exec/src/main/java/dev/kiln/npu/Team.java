package dev.kiln.npu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * Worker threads that take a launch's chunks with its caller and stay awake for a moment
 * after each launch. A block's kernels follow one another within tens of microseconds, and
 * a worker that had parked in between took 50 to 80 us to wake: on 2 cores, about as long
 * as a small kernel's half. One launch at a time; a caller that finds the team busy (another
 * thread's launch, or a launch from inside a chunk) is told so and runs its chunks elsewhere.
 *
 * <p>Chunks are the same fixed ranges whichever thread takes them, so results do not depend
 * on the team. Workers spin only while {@code spinAllowed} says so (not while the JIT needs
 * the cores, see {@link CompilerLoad}); otherwise, and after {@value #SPIN_NANOS} ns, they park.
 */
final class Team {
    /** How long a worker, and a caller waiting for the last chunk, spin before parking. */
    static final long SPIN_NANOS = 50_000;
    /** A parked thread looks again at least this often, whatever happens to its wake-up. */
    private static final long PARK_NANOS = 100_000_000;

    private final Worker[] workers;
    private final BooleanSupplier spinAllowed;
    private final AtomicBoolean taken = new AtomicBoolean();
    private volatile Job job;

    Team(int threads, BooleanSupplier spinAllowed) {
        this.spinAllowed = spinAllowed;
        workers = new Worker[threads];
        for (int i = 0; i < threads; i++) {
            workers[i] = new Worker("kiln-npu-worker-" + (i + 1));
            workers[i].start();
        }
    }

    /** Whether the current thread is one of this team's workers. */
    boolean isWorker(Thread t) {
        for (Worker w : workers) if (w == t) return true;
        return false;
    }

    /**
     * Runs the {@code chunks} chunks of [0, n) on the caller and the workers; false, having
     * run nothing, when the team is taken. Returns once every chunk has ended, and then
     * throws the first chunk's failure, if any.
     */
    boolean tryRun(long n, int chunks, Parallel.RangeBody body) {
        if (!taken.compareAndSet(false, true)) return false;
        Job j = new Job(n, chunks, body, Thread.currentThread());
        try {
            job = j;
            for (Worker w : workers) LockSupport.unpark(w);
            j.work();
            j.awaitDone();
        } finally {
            job = null;
            taken.set(false);
        }
        Throwable failure = j.failure.get();
        if (failure instanceof RuntimeException e) throw e;
        if (failure instanceof Error e) throw e;
        if (failure != null) throw new IllegalStateException(failure);
        return true;
    }

    private static final class Job {
        private final long n;
        private final int chunks;
        private final Parallel.RangeBody body;
        private final Thread caller;
        private final AtomicInteger next = new AtomicInteger(), remaining;
        private final AtomicReference<Throwable> failure = new AtomicReference<>();

        Job(long n, int chunks, Parallel.RangeBody body, Thread caller) {
            this.n = n;
            this.chunks = chunks;
            this.body = body;
            this.caller = caller;
            this.remaining = new AtomicInteger(chunks);
        }

        /** Takes chunks until none is left. */
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

        void awaitDone() {
            long spinEnd = System.nanoTime() + SPIN_NANOS;
            while (remaining.get() > 0) {
                if (System.nanoTime() < spinEnd) Thread.onSpinWait();
                else LockSupport.parkNanos(this, PARK_NANOS);
            }
        }
    }

    private final class Worker extends Thread {
        Worker(String name) {
            super(name);
            setDaemon(true);
        }

        @Override
        public void run() {
            Job done = null;
            long idleSince = System.nanoTime();
            while (true) {
                Job j = job;
                if (j != null && j != done) {
                    j.work();
                    done = j;
                    idleSince = System.nanoTime();
                } else if (System.nanoTime() - idleSince < SPIN_NANOS && spinAllowed.getAsBoolean()) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, PARK_NANOS);
                }
            }
        }
    }
}
