package dev.kiln.npu;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The workers' ranges: every index once, chunks going to whichever thread is free, failures reaching the caller. */
class ParallelTest {
    @Test
    void everyIndexRunsExactlyOnceInTheChunksTheWorkersWouldRun() {
        for (long n : new long[] {1, 2, 3, 7, 64, 1001}) {
            for (long cost : new long[] {1, Parallel.SERIAL_THRESHOLD, 1L << 30}) {
                AtomicIntegerArray seen = new AtomicIntegerArray((int) n);
                List<long[]> ranges = Collections.synchronizedList(new ArrayList<>());
                Parallel.forRange(n, cost, (from, to) -> {
                    ranges.add(new long[] {from, to});
                    for (long i = from; i < to; i++) seen.incrementAndGet((int) i);
                });
                for (int i = 0; i < n; i++) assertEquals(1, seen.get(i), "n=" + n + " cost=" + cost + " index " + i);
                assertEquals(Parallel.chunks(n, cost), ranges.size(), "n=" + n + " cost=" + cost);
            }
        }
    }

    @Test
    void largeWorkIsCutIntoSeveralChunksPerWorkerEachWorthItsHandOff() {
        int w = Parallel.workers();
        assertEquals(1, Parallel.chunks(1000, Parallel.SERIAL_THRESHOLD - 1), "small work stays on the caller");
        if (w == 1) return;
        assertEquals(w, Parallel.chunks(1000, Parallel.SERIAL_THRESHOLD), "just above the threshold: one chunk per worker");
        assertEquals(3, Parallel.chunks(3, 1L << 40), "never more chunks than units");
        assertEquals(w * Parallel.CHUNKS_PER_WORKER, Parallel.chunks(1L << 20, 1L << 40));
        for (long cost = Parallel.SERIAL_THRESHOLD; cost < 1L << 30; cost = cost * 3 / 2) {
            int chunks = Parallel.chunks(1L << 20, cost);
            assertTrue(chunks >= w && chunks <= w * Parallel.CHUNKS_PER_WORKER, "cost " + cost + ": " + chunks + " chunks");
            if (chunks > w) assertTrue(cost / chunks >= Parallel.MIN_CHUNK_COST, "cost " + cost + ": chunks of " + cost / chunks);
        }
    }

    /**
     * The chunks go to whichever thread is free: while one thread is held up in its chunk,
     * the others take all the rest (with one fixed chunk each, they would wait for it).
     */
    @Test
    void aThreadHeldUpInOneChunkLeavesTheOthersToTheRest() throws InterruptedException {
        assumeTrue(Parallel.workers() > 1, "needs a second worker");
        for (boolean teamBusy : new boolean[] {false, true}) {
            int chunks = 4 * Parallel.workers();
            java.util.concurrent.CountDownLatch others = new java.util.concurrent.CountDownLatch(chunks - 1);
            java.util.concurrent.atomic.AtomicBoolean waited = new java.util.concurrent.atomic.AtomicBoolean(true);
            java.util.concurrent.atomic.AtomicBoolean first = new java.util.concurrent.atomic.AtomicBoolean(true);
            Parallel.RangeBody body = (from, to) -> {
                if (first.getAndSet(false)) {
                    try {
                        waited.set(others.await(20, java.util.concurrent.TimeUnit.SECONDS));
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                } else {
                    others.countDown();
                }
            };
            if (teamBusy) {
                // A launch from a second thread while the team runs one: it goes to the pool.
                Thread holder = new Thread(() -> Parallel.runOnWorkers(2, 2, (f, t) -> sleepMillis(300)));
                holder.start();
                sleepMillis(50);
                Parallel.runOnWorkers(chunks, chunks, body);
                holder.join();
            } else {
                Parallel.runOnWorkers(chunks, chunks, body);
            }
            assertTrue(waited.get(), (teamBusy ? "pool: " : "team: ") + "the other chunks waited for the held-up one");
        }
    }

    private static void sleepMillis(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void onTheWorkersEveryChunkRunsOnceWithItsOwnRange() {
        for (int launch = 0; launch < 200; launch++) {
            List<long[]> ranges = Collections.synchronizedList(new ArrayList<>());
            Parallel.runOnWorkers(10, 3, (from, to) -> ranges.add(new long[] {from, to}));
            ranges.sort((a, b) -> Long.compare(a[0], b[0]));
            assertEquals(List.of(0L, 3L, 3L, 6L, 6L, 10L), ranges.stream().flatMapToLong(java.util.Arrays::stream).boxed().toList());
        }
    }

    @Test
    void aLaunchFromInsideAChunkAndLaunchesFromSeveralThreadsAllComplete() throws InterruptedException {
        AtomicIntegerArray seen = new AtomicIntegerArray(4 * 64);
        Thread[] callers = new Thread[4];
        for (int t = 0; t < callers.length; t++) {
            int base = t * 64;
            callers[t] = new Thread(() -> {
                for (int launch = 0; launch < 50; launch++) {
                    Parallel.runOnWorkers(2, 2, (from, to) -> Parallel.forRange(32, 1L << 30,
                            (f, e) -> { for (long i = f; i < e; i++) seen.incrementAndGet(base + (int) (from * 32 + i)); }));
                }
            });
            callers[t].start();
        }
        for (Thread c : callers) c.join(60_000);
        for (int i = 0; i < seen.length(); i++) assertEquals(50, seen.get(i), "index " + i);
    }

    @Test
    void aFailingChunkReachesTheCallerWithNoChunkStillRunning() {
        for (int failing = 0; failing < 3; failing++) {
            int bad = failing;
            AtomicInteger running = new AtomicInteger();
            IllegalStateException boom = new IllegalStateException("chunk " + bad);
            Parallel.RangeBody body = (from, to) -> {
                running.incrementAndGet();
                try {
                    if (from == bad) throw boom;
                    long end = System.nanoTime() + 20_000_000;
                    while (System.nanoTime() < end) Thread.onSpinWait();
                } finally {
                    running.decrementAndGet();
                }
            };
            RuntimeException onWorkers = assertThrows(RuntimeException.class, () -> Parallel.runOnWorkers(3, 3, body));
            assertSame(boom, onWorkers, "the chunk's own exception, not a copy re-created by the join");
            assertEquals(0, running.get(), "a chunk was still running when the call returned");
            RuntimeException inOrder = assertThrows(RuntimeException.class, () -> Parallel.runInOrder(3, 3, body));
            assertSame(boom, inOrder);
            assertEquals(0, running.get());
        }
    }
}
