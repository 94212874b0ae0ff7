package dev.kiln.trace;

import dev.kiln.Fn1;
import dev.kiln.Kiln;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PrepareBackendTest {
    @Test
    void compilingForABackendPreparesItsCompilerOncePerJvmInTheBackground() throws InterruptedException {
        Fn1<Tensor> f = Kiln.compile(x -> x.add(1));
        Fn1<Tensor> g = Kiln.compile(x -> x.mul(2));
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (RecordingTestBackend.PREPARES.get() == 0 && System.nanoTime() < deadline) Thread.sleep(5);
        assertEquals(1, RecordingTestBackend.PREPARES.get());
        assertEquals(3f, f.apply(Tensor.of(new float[] {2}, 1)).toFloatArray()[0]);
        assertEquals(4f, g.apply(Tensor.of(new float[] {2}, 1)).toFloatArray()[0]);
        assertEquals(1, RecordingTestBackend.PREPARES.get(), "once per JVM, however many functions compile");
    }

    @Test
    void theEagerBackendHasNothingToPrepare() {
        CompiledFunction.prepareBackend(dev.kiln.Backend.EAGER);
        assertTrue(Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().equals("kiln-prepare-EAGER")));
    }
}
