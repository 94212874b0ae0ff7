package dev.kiln.cache;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.*;

class CacheConfigTest {
    private static CacheConfig resolve(Map<String, String> props, Map<String, String> env) {
        Map<String, String> p = new HashMap<>(props);
        p.putIfAbsent("user.home", "/home/ada");
        return CacheConfig.resolve(p::get, env::get);
    }

    @Test
    void directoryPrecedence() {
        assertEquals(Optional.of(Path.of("/home/ada/.cache/kiln")), resolve(Map.of(), Map.of()).directory());
        assertEquals(Optional.of(Path.of("/xdg/kiln")), resolve(Map.of(), Map.of("XDG_CACHE_HOME", "/xdg")).directory());
        assertEquals(Optional.of(Path.of("/home/ada/.cache/kiln")), resolve(Map.of(), Map.of("XDG_CACHE_HOME", "relative")).directory(),
                "a relative XDG_CACHE_HOME is ignored, as the XDG spec says");
        assertEquals(Optional.of(Path.of("/env")), resolve(Map.of(), Map.of("XDG_CACHE_HOME", "/xdg", "KILN_CACHE_DIR", "/env")).directory());
        assertEquals(Optional.of(Path.of("/prop")),
                resolve(Map.of("kiln.cache.dir", "/prop"), Map.of("XDG_CACHE_HOME", "/xdg", "KILN_CACHE_DIR", "/env")).directory());
    }

    @Test
    void offDisablesTheDiskTier() {
        assertEquals(Optional.empty(), resolve(Map.of("kiln.cache.dir", "/prop"), Map.of("KILN_CACHE", "off")).directory());
        assertEquals(Optional.empty(), resolve(Map.of("kiln.cache", "OFF"), Map.of()).directory());
        assertTrue(resolve(Map.of(), Map.of("KILN_CACHE", "on")).directory().isPresent());
    }

    @Test
    void capsDefaultAndParse() {
        CacheConfig d = resolve(Map.of(), Map.of());
        assertEquals(2L << 30, d.diskCapBytes());
        assertEquals(256L << 20, d.memoryCapBytes());
        CacheConfig c = resolve(Map.of("kiln.cache.maxBytes", "512m"), Map.of("KILN_CACHE_MAX_BYTES", "1g", "KILN_CACHE_MEMORY_BYTES", "64KiB"));
        assertEquals(512L << 20, c.diskCapBytes());
        assertEquals(64L << 10, c.memoryCapBytes());
        assertEquals(12345, CacheConfig.parseSize("12345", "x"));
        assertEquals(3L << 40, CacheConfig.parseSize(" 3T ", "x"));
        assertEquals(2L << 30, CacheConfig.parseSize("2gb", "x"));
        var e = assertThrows(IllegalArgumentException.class, () -> resolve(Map.of(), Map.of("KILN_CACHE_MAX_BYTES", "lots")));
        assertEquals("kiln.cache.maxBytes/KILN_CACHE_MAX_BYTES: 'lots' is not a size (use bytes, or a number with k, m, g or t)", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CacheConfig.parseSize("-5", "x"));
        assertThrows(IllegalArgumentException.class, () -> CacheConfig.parseSize("99999999999g", "x"));
        assertThrows(IllegalArgumentException.class, () -> resolve(Map.of("kiln.cache.maxBytes", "0"), Map.of()));
    }
}
