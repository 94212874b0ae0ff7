package dev.kiln.trace;

import dev.kiln.ops.BackgroundWarmup;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TracerWarmupTest {
    @Test
    void theTracerWarmupIsFoundFirstAndRunsAllItsRounds() {
        var all = BackgroundWarmup.load();
        assertTrue(all.getFirst() instanceof TracerWarmup, "it runs before the kernels' warm-up: " + all);
        TracerWarmup w = new TracerWarmup();
        assertEquals(w.rounds(), BackgroundWarmup.run(List.of(w), 60_000));
    }
}
