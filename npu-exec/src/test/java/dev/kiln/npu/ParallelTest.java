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

/** The workers' ranges: every index once, the caller taking the first chunk, failures reaching the caller. */
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
                int chunks = (int) Math.min(n, cost < Parallel.SERIAL_THRESHOLD ? 1 : Parallel.workers());
                assertEquals(chunks, ranges.size(), "n=" + n + " cost=" + cost);
            }
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
