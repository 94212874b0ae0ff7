package dev.kiln.npu;

import java.util.concurrent.atomic.AtomicBoolean;
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
 * Longer spins measured worse: 200 us or 1 ms made the W4 block's compiled calls 10 to 15%
 * slower (three runs of each, alternating with 50 us), likely because a spinning worker holds
 * a core that the JIT, the collector and the DRAM pool's cleaner would use.
 */
final class Team {
    /** How long a worker, and a caller waiting for the last chunk, spin before parking. */
    static final long SPIN_NANOS = 50_000;

    private final Worker[] workers;
    private final BooleanSupplier spinAllowed;
    private final AtomicBoolean taken = new AtomicBoolean();
    private volatile ChunkJob job;

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
        ChunkJob j = new ChunkJob(n, chunks, body, Thread.currentThread());
        try {
            job = j;
            for (Worker w : workers) LockSupport.unpark(w);
            j.work();
            j.awaitDone(SPIN_NANOS);
        } finally {
            job = null;
            taken.set(false);
        }
        j.rethrow();
        return true;
    }

    private final class Worker extends Thread {
        Worker(String name) {
            super(name);
            setDaemon(true);
        }

        @Override
        public void run() {
            ChunkJob done = null;
            long idleSince = System.nanoTime();
            while (true) {
                ChunkJob j = job;
                if (j != null && j != done) {
                    j.work();
                    done = j;
                    idleSince = System.nanoTime();
                } else if (System.nanoTime() - idleSince < SPIN_NANOS && spinAllowed.getAsBoolean()) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, ChunkJob.PARK_NANOS);
                }
            }
        }
    }
}
