package dev.kiln.npu.kernels;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.LongAdder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The choice between a kernel's vector code and its scalar twin, driven by given timings. */
class ScalarTwinTest {
    private static final long MS = 1_000_000;

    /** Runs the piece the twin chooses, taking {@code scalarMs} or {@code vectorMs}; true when it ran scalar. */
    private static boolean piece(ScalarTwin twin, double scalarMs, double vectorMs) {
        boolean scalar = twin.scalarNext(100);
        twin.record(scalar, (long) ((scalar ? scalarMs : vectorMs) * MS), 100);
        return scalar;
    }

    @Test
    void countsThePiecesItRunsScalar() {
        LongAdder scalarPieces = new LongAdder();
        ScalarTwin twin = new ScalarTwin(true, () -> false, scalarPieces);
        int scalar = 0;
        for (int i = 0; i < 40; i++) if (piece(twin, 10, 40)) scalar++;
        assertTrue(scalar > 0 && scalar < 40, "some of each: " + scalar);
        assertEquals(scalar, scalarPieces.sum());
        ScalarTwin.forcing(true, () -> twin.scalarNext(100));
        assertEquals(scalar, scalarPieces.sum(), "a forced variant is not a choice");
        for (int i = 0; i < 10_000 && !twin.settled(); i++) piece(twin, 10, 1);
        long settledAt = scalarPieces.sum();
        assertFalse(piece(twin, 10, 1));
        assertEquals(settledAt, scalarPieces.sum(), "settled: no more scalar pieces");
    }

    @Test
    void startsScalarAndExploresOnlyWhenTheShareHasRoom() {
        ScalarTwin twin = new ScalarTwin(true, () -> false);
        assertTrue(piece(twin, 1, 100), "the first piece runs scalar");
        // A first vector piece is expected to run FIRST_VECTOR_PIECE times slower than the scalar ones:
        // it waits until EXPLORATION of the scalar time covers that.
        int scalarRuns = 1;
        while (scalarRuns < 1000 && piece(twin, 1, 40)) scalarRuns++;
        assertTrue(scalarRuns >= ScalarTwin.FIRST_VECTOR_PIECE / ScalarTwin.EXPLORATION - 1 && scalarRuns < 1000,
                "scalar pieces before exploring: " + scalarRuns);
        // That vector piece took 40 ms: the next waits until the share covers 80 ms of vector time.
        int more = 0;
        while (more < 1000 && piece(twin, 1, 40)) more++;
        assertTrue(more >= 80 / ScalarTwin.EXPLORATION - scalarRuns - 2 && more < 1000, "scalar pieces before the second exploration: " + more);
        assertFalse(twin.settled(), "vector pieces slower than scalar ones never settle it");
    }

    @Test
    void settlesOnTheVectorCodeAfterItWinsRepeatedly() {
        ScalarTwin twin = new ScalarTwin(true, () -> false);
        int vectorWins = 0;
        for (int i = 0; i < 10_000 && !twin.settled(); i++) {
            if (!piece(twin, 1, 0.25)) vectorWins++;
        }
        assertTrue(twin.settled());
        assertTrue(vectorWins == ScalarTwin.WINS_TO_SETTLE, "vector pieces until settled: " + vectorWins);
        assertFalse(twin.scalarNext(100), "settled: always vector");
    }

    @Test
    void aSlowVectorPieceBreaksTheRun() {
        ScalarTwin twin = new ScalarTwin(true, () -> false);
        double[] vectorMs = {0.25, 0.25, 5, 0.25, 0.25, 0.25};
        int vectorPieces = 0;
        for (int i = 0; i < 10_000 && !twin.settled(); i++) {
            if (!piece(twin, 1, vectorMs[Math.min(vectorPieces, vectorMs.length - 1)])) vectorPieces++;
        }
        assertTrue(vectorPieces == 6, "three wins in a row needed after the slow piece; vector pieces: " + vectorPieces);
    }

    @Test
    void oneVectorPieceAtATime() {
        ScalarTwin twin = new ScalarTwin(true, () -> false);
        for (int i = 0; i < 1000; i++) twin.record(true, MS, 100);
        assertFalse(twin.scalarNext(1), "the share has room for a small vector piece");
        assertTrue(twin.scalarNext(1), "but another worker's piece runs scalar until it is recorded");
        twin.record(false, MS / 10, 1);
        assertFalse(twin.scalarNext(1));
    }

    @Test
    void expectsAVectorPieceToCostInProportionToItsWork() {
        ScalarTwin twin = new ScalarTwin(true, () -> false);
        for (int i = 0; i < 40; i++) twin.record(true, MS, 100);
        // 40 ms of scalar pieces at 0.01 ms a unit: room for 10 ms of vector time, 125 units at eight times the rate.
        assertTrue(twin.scalarNext(200), "a large piece waits");
        assertFalse(twin.scalarNext(100), "a small one fits");
    }

    @Test
    void settlesOnTheVectorCodeOnceTheJitIsQuiet() {
        boolean[] quiet = {false};
        ScalarTwin twin = new ScalarTwin(true, () -> quiet[0]);
        assertTrue(piece(twin, 1, 100), "the first piece runs scalar");
        // A vector piece timed in the interpreter: by the share alone the next would wait for 400 ms of scalar pieces.
        while (piece(twin, 1, 100)) { }
        for (int i = 0; i < 100; i++) assertTrue(piece(twin, 0.01, 100), "scalar while the JIT is busy");
        quiet[0] = true;
        assertFalse(piece(twin, 0.01, 100), "vector once the JIT is quiet");
        assertTrue(twin.settled(), "for good");
        quiet[0] = false;
        assertFalse(twin.scalarNext(100));
    }

    @Test
    void disabledTwinsRunTheVectorCode() {
        ScalarTwin twin = new ScalarTwin(false, () -> false);
        assertTrue(twin.settled());
        assertFalse(twin.scalarNext(100));
    }

    @Test
    void forcingOverridesTheChoiceAndIsUndone() {
        ScalarTwin twin = new ScalarTwin(true, () -> false);
        ScalarTwin.forcing(false, () -> assertTrue(twin.settled()));
        ScalarTwin.forcing(true, () -> {
            assertFalse(twin.settled());
            for (int i = 0; i < 100; i++) assertTrue(piece(twin, 50, 0.001), "forced scalar");
        });
        assertTrue(twin.scalarNext(100), "forced pieces are not recorded: the twin starts afresh");
    }
}
