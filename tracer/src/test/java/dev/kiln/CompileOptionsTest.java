package dev.kiln;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** CompileOptions writes out its value methods (see its comment): they must keep a record's contract. */
class CompileOptionsTest {
    private static final CompileOptions BASE = CompileOptions.defaults();

    @Test
    void equalOptionsAreEqualWithEqualHashCodes() {
        CompileOptions again = new CompileOptions(Backend.NPU, Dynamic.AUTO, 8, false, false);
        assertEquals(BASE, again);
        assertEquals(BASE.hashCode(), again.hashCode());
        assertNotEquals(BASE, null);
        assertNotEquals(BASE, "CompileOptions");
    }

    @Test
    void everyComponentTakesPartInEqualsAndHashCode() {
        List<CompileOptions> variants = List.of(BASE.backend(Backend.EAGER), BASE.dynamic(Dynamic.OFF), BASE.dynamic(Dynamic.ON),
                BASE.recompileLimit(9), BASE.fullGraph(true), BASE.freezeWeights(true));
        for (CompileOptions v : variants) {
            assertNotEquals(BASE, v, v.toString());
            assertNotEquals(BASE.hashCode(), v.hashCode(), v.toString());
        }
    }

    @Test
    void theTextFormIsTheRecordsOwnAndNamesEveryComponent() {
        assertEquals("CompileOptions[backend=NPU, dynamic=AUTO, recompileLimit=8, fullGraph=false, freezeWeights=false]", BASE.toString());
        assertEquals("CompileOptions[backend=EAGER, dynamic=ON, recompileLimit=3, fullGraph=true, freezeWeights=true]",
                BASE.backend(Backend.EAGER).dynamic(Dynamic.ON).recompileLimit(3).fullGraph(true).freezeWeights(true).toString());
    }

    @Test
    void invalidOptionsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> BASE.recompileLimit(0));
        assertThrows(IllegalArgumentException.class, () -> BASE.backend(null));
    }
}
