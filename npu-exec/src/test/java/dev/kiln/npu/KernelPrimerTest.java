package dev.kiln.npu;

import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class KernelPrimerTest {

    @Test
    void runsTheRoundsAskedForWithinItsBudget() {
        assertEquals(2, KernelPrimer.run(2, 60_000));
        assertEquals(0, KernelPrimer.run(5, 0), "a spent budget runs nothing");
    }

    @Test
    void primingNeverChangesWhatTheKernelsCompute() {
        Tensor x = Tensor.randn(3, 64, 128), w = Tensor.randn(4, 96, 128);
        float[] before = x.matmul(w.mT()).gelu().softmax(-1).toFloatArray();
        KernelPrimer.run(3, 60_000);
        assertArrayEquals(before, x.matmul(w.mT()).gelu().softmax(-1).toFloatArray());
    }

    @Test
    void thePropertyTurnsBackgroundPrimingOff() {
        // The build runs tests with -Dkiln.npu.prime=false, so that no thread competes with them.
        assertEquals("false", System.getProperty("kiln.npu.prime"));
        KernelPrimer.startInBackground();
        assertNull(KernelPrimer.thread());
    }
}
