package dev.kiln.opt.npu;

import dev.kiln.cache.CacheConfig;
import dev.kiln.cache.KernelCache;
import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.ops.BackgroundWarmup;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CompilerWarmupTest {
    @Test
    void theCompilerWarmupRunsItsRoundsWithoutCompilingThroughTheCacheOrMovingData() {
        assertTrue(BackgroundWarmup.load().stream().anyMatch(w -> w instanceof CompilerWarmup));
        NpuGraphCompiler.Counts before = NpuGraphCompiler.counts();
        long bytes = Dma.totalBytes();
        CompilerWarmup w = new CompilerWarmup();
        assertEquals(w.rounds(), BackgroundWarmup.run(List.of(w), 60_000));
        NpuGraphCompiler.Counts after = NpuGraphCompiler.counts();
        assertEquals(before.compiles(), after.compiles());
        assertEquals(before.diskHits() + before.memoryHits(), after.diskHits() + after.memoryHits());
        assertEquals(bytes, Dma.totalBytes());
    }

    @Test
    void preparingTheCompilerCompilesNothingAndTouchesNoCache() {
        KernelCache cache = KernelCache.open(CacheConfig.memoryOnly(1 << 20));
        NpuGraphCompiler.Counts before = NpuGraphCompiler.counts();
        new NpuGraphCompiler(NpuDevice.current(), cache).prepare();
        NpuGraphCompiler.Counts after = NpuGraphCompiler.counts();
        assertEquals(before.compiles(), after.compiles());
        assertEquals(before.diskHits() + before.memoryHits(), after.diskHits() + after.memoryHits());
        KernelCache.Stats s = cache.stats();
        assertEquals(0, s.hits() + s.misses());
    }

    @Test
    void theSampleTileProgramHasEveryInstructionKind() {
        var kinds = NpuGraphCompiler.everyTileInstruction().instructions().stream().map(i -> i.getClass()).distinct().count();
        assertEquals(dev.kiln.npu.fused.TileInstr.class.getPermittedSubclasses().length, kinds);
    }
}
