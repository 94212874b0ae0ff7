package dev.kiln.npu;

import dev.kiln.ops.BackgroundWarmup;
import dev.kiln.ops.Warmup;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KernelWarmupTest {

    @Test
    void theKernelWarmupIsFoundAndRunsItsRoundsWithinTheBudget() {
        List<Warmup> all = BackgroundWarmup.load();
        assertTrue(all.stream().anyMatch(w -> w instanceof KernelWarmup), all.toString());
        KernelWarmup w = new KernelWarmup();
        assertEquals(2, BackgroundWarmup.run(List.of(new Limited(w, 2)), 60_000));
        assertEquals(0, BackgroundWarmup.run(List.of(w), 0), "a spent budget runs nothing");
    }

    @Test
    void warmingUpNeverChangesWhatTheKernelsCompute() {
        Tensor x = Tensor.randn(3, 64, 128), w = Tensor.randn(4, 96, 128);
        float[] before = x.matmul(w.mT()).gelu().softmax(-1).toFloatArray();
        BackgroundWarmup.run(List.of(new Limited(new KernelWarmup(), 3)), 60_000);
        assertArrayEquals(before, x.matmul(w.mT()).gelu().softmax(-1).toFloatArray());
    }

    @Test
    void thePropertyTurnsBackgroundWarmupOff() {
        // The build runs tests with -Dkiln.warmup=false, so that no thread competes with them.
        assertEquals("false", System.getProperty("kiln.warmup"));
        BackgroundWarmup.start();
        assertNull(BackgroundWarmup.thread());
    }

    @Test
    void backgroundWarmupIsOffUnlessAskedFor() {
        String set = System.clearProperty("kiln.warmup");
        try {
            BackgroundWarmup.start();
            assertNull(BackgroundWarmup.thread());
        } finally {
            System.setProperty("kiln.warmup", set);
        }
    }

    /** A warm-up cut to {@code rounds} rounds. */
    private record Limited(Warmup inner, int rounds) implements Warmup {
        public int order() { return inner.order(); }
        public void round() { inner.round(); }
    }
}
