package dev.kiln.npu;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The compiler-load signal that makes kernels leave the cores to the JIT, driven by a fake clock and compile time. */
class CompilerLoadTest {
    private final AtomicLong nanos = new AtomicLong(1_000_000_000L), compileMillis = new AtomicLong();

    private CompilerLoad load(int cores) { return new CompilerLoad(compileMillis::get, nanos::get, cores); }

    private void advance(long wallMillis, long compiledMillis) {
        nanos.addAndGet(wallMillis * 1_000_000);
        compileMillis.addAndGet(compiledMillis);
    }

    @Test
    void busyUntilAWindowShowsTheCompilersIdle() {
        CompilerLoad l = load(2);
        assertTrue(l.busy(), "assumed busy before a window has been measured");
        advance(30, 20);
        assertTrue(l.busy(), "20 ms of compiling in 30 ms on 2 cores: a third of the machine's time");
        advance(30, 5);
        assertFalse(l.busy(), "5 ms in 30 ms: under a tenth of the 2 cores' time");
        advance(30, 0);
        assertFalse(l.busy());
    }

    @Test
    void samplesAtMostOncePerWindow() {
        CompilerLoad l = load(2);
        advance(CompilerLoad.WINDOW_MILLIS, 0);
        assertFalse(l.busy());
        advance(CompilerLoad.WINDOW_MILLIS - 1, 1000);
        assertFalse(l.busy(), "within the window, the last sample stands");
        advance(1, 0);
        assertTrue(l.busy(), "the window over, the compile time it saw counts");
    }

    @Test
    void afterEnoughQuietTimeInAllALateCompileNoLongerCounts() {
        CompilerLoad l = load(2);
        long step = CompilerLoad.MAX_QUIET_PER_WINDOW_MILLIS;
        for (long quiet = 0; quiet < CompilerLoad.SETTLE_MILLIS - step; quiet += step) {
            advance(step, 0);
            assertFalse(l.busy());
        }
        advance(30, 200);
        assertTrue(l.busy(), "not yet warmed up: a burst still counts");
        assertFalse(l.settled());
        advance(step, 0);
        assertFalse(l.busy());
        assertTrue(l.settled());
        advance(30, 200);
        assertFalse(l.busy(), "warmed up: a late compile no longer makes a launch run on one thread");
    }

    @Test
    void aLongPauseBetweenLaunchesIsNotQuietTimeOfItsOwn() {
        CompilerLoad l = load(2);
        advance(10_000, 0);
        assertFalse(l.busy(), "the JIT was idle");
        assertFalse(l.settled(), "but no kernel ran to show it done with them: one window counts only so much");
    }

    @Test
    void theShareScalesWithTheCores() {
        CompilerLoad l = load(32);
        advance(100, 150);
        assertFalse(l.busy(), "1.5 cores compiling of 32 leave plenty for the workers");
    }

    @Test
    void inOrderChunksAreTheChunksTheWorkersRun() {
        List<long[]> ranges = new ArrayList<>();
        Parallel.runInOrder(10, 3, (from, to) -> ranges.add(new long[] {from, to}));
        assertEquals(3, ranges.size());
        assertEquals(List.of(0L, 3L, 3L, 6L, 6L, 10L), ranges.stream().flatMapToLong(java.util.Arrays::stream).boxed().toList());
    }
}
