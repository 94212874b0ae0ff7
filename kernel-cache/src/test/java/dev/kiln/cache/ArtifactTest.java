package dev.kiln.cache;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ArtifactTest {
    @Test
    void copiesBytesInAndOut() {
        byte[] program = {1, 2, 3};
        Map<String, byte[]> parts = new LinkedHashMap<>();
        parts.put("program", program);
        parts.put("classes/dev/kiln/gen/K0.class", new byte[] {9});
        Artifact a = Artifact.of(parts, Map.of("entry", "K0"));
        program[0] = 42;
        parts.clear();
        assertArrayEquals(new byte[] {1, 2, 3}, a.part("program"));
        a.part("program")[1] = 42;
        assertArrayEquals(new byte[] {1, 2, 3}, a.part("program"));
        assertEquals(List.of("program", "classes/dev/kiln/gen/K0.class"), List.copyOf(a.partNames()));
        assertEquals(4, a.byteSize());
        assertEquals(3, a.partSize("program"));
        assertThrows(UnsupportedOperationException.class, () -> a.metadata().put("x", "y"));
        assertThrows(UnsupportedOperationException.class, () -> a.partNames().clear());
    }

    @Test
    void equalityIsByContent() {
        Artifact a = Artifact.of(Map.of("program", new byte[] {1, 2}), Map.of("m", "v"));
        assertEquals(a, Artifact.of(Map.of("program", new byte[] {1, 2}), Map.of("m", "v")));
        assertEquals(a.hashCode(), Artifact.of(Map.of("program", new byte[] {1, 2}), Map.of("m", "v")).hashCode());
        assertNotEquals(a, Artifact.of(Map.of("program", new byte[] {1, 3}), Map.of("m", "v")));
        assertNotEquals(a, Artifact.of(Map.of("program", new byte[] {1, 2}), Map.of("m", "w")));
        assertEquals("Artifact[program (2 B), metadata {m=v}]", a.toString());
    }

    @Test
    void rejectsPartNamesThatCouldEscapeOrBreakTheManifest() {
        for (String bad : List.of("", "/abs", "a//b", "../x", "a/../b", "a/", "with space", "new\nline", ".hidden", "a/.b")) {
            var e = assertThrows(IllegalArgumentException.class, () -> Artifact.of(Map.of(bad, new byte[0]), Map.of()), bad);
            assertTrue(e.getMessage().contains("part name"), e.getMessage());
        }
        var m = assertThrows(IllegalArgumentException.class, () -> Artifact.of(Map.of(), Map.of("bad name", "v")));
        assertTrue(m.getMessage().contains("metadata name 'bad name'"), m.getMessage());
        var p = assertThrows(IllegalArgumentException.class, () -> Artifact.of(Map.of(), Map.of()).part("program"));
        assertTrue(p.getMessage().contains("no part 'program'"), p.getMessage());
    }
}
