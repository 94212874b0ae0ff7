package dev.kiln.cache;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ExerciseCodecTest {
    @Test
    void theWarmUpRoundTripsAnEntryInMemoryAndTouchesNoDirectory() {
        Path configured = CacheConfig.fromEnvironment().directory().orElseThrow();
        boolean existed = Files.exists(configured);
        KernelCache.exerciseCodec();
        KernelCache.exerciseCodec();
        assertEquals(existed, Files.exists(configured));
    }
}
