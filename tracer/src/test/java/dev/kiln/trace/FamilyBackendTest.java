package dev.kiln.trace;

import dev.kiln.CompileOptions;
import dev.kiln.Dynamic;
import dev.kiln.Fn1;
import dev.kiln.Kiln;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How a compiled function uses a backend's one executable for every size, or compiles each size when there is none. */
class FamilyBackendTest {
    private static final Fn1<Tensor> BODY = x -> x.mul(2.0).add(1.0).sigmoid();

    @AfterEach
    void reset() { RecordingTestBackend.offersFamilies = false; }

    private static void callAt(Fn1<Tensor> f, int... sizes) {
        for (int n : sizes) {
            Tensor x = Tensor.randn(n, n, 3);
            assertArrayEquals(BODY.apply(x).toFloatArray(), f.apply(x).toFloatArray(), "size " + n);
        }
    }

    @Test
    void newSizesRunOnTheFamilyWithoutCompiling() {
        RecordingTestBackend.offersFamilies = true;
        Fn1<Tensor> f = Kiln.compile(BODY, CompileOptions.defaults().dynamic(Dynamic.AUTO));
        callAt(f, 4, 5);
        int compiles = RecordingTestBackend.COMPILES.get(), families = RecordingTestBackend.FAMILIES.get();
        callAt(f, 9, 17, 6, 9);
        assertEquals(compiles, RecordingTestBackend.COMPILES.get());
        assertEquals(families, RecordingTestBackend.FAMILIES.get());
        assertTrue(Kiln.explain(f, Tensor.randn(1, 11, 3)).toString().contains("one test program for every size"));
    }

    @Test
    void withoutAFamilyEachNewSizeCompilesAndExplainSaysSo() {
        Fn1<Tensor> f = Kiln.compile(BODY, CompileOptions.defaults().dynamic(Dynamic.AUTO));
        callAt(f, 4, 5);
        int compiles = RecordingTestBackend.COMPILES.get();
        callAt(f, 9, 17, 9);
        assertEquals(compiles + 2, RecordingTestBackend.COMPILES.get());
        String explain = Kiln.explain(f, Tensor.randn(1, 11, 3)).toString();
        assertTrue(explain.contains("the NPU backend compiles each size on its own"), explain);
    }
}
