package dev.kiln.npu.device;

import dev.kiln.tensor.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;

class DmaTest {

    @Test
    void aLaunchCountsItsCopiesAndAddsThemToTheTotalsOnceWhenItEnds() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dram = arena.allocate(64 * Float.BYTES), sram = arena.allocate(64 * Float.BYTES);
            long read = Dma.totalBytesRead(), written = Dma.totalBytesWritten();
            Dma.Transfer t = Dma.begin("test");
            t.load(dram, DType.FLOAT32, 0, sram, 0, 16);
            t.load(dram, DType.FLOAT32, 1, 2, sram, 16, 1, 8);
            t.store(sram, 0, 1, dram, DType.FLOAT32, 32, 10);
            t.readInPlace(3);
            assertEquals(read, Dma.totalBytesRead(), "nothing in the totals before the launch ends");
            LaunchTraffic traffic = t.traffic();
            assertEquals(new LaunchTraffic("test", (16 + 8 + 3) * 4, 10 * 4), traffic);
            assertEquals(read + traffic.bytesRead(), Dma.totalBytesRead());
            assertEquals(written + traffic.bytesWritten(), Dma.totalBytesWritten());
            assertEquals(traffic, t.traffic());
            assertEquals(read + traffic.bytesRead(), Dma.totalBytesRead(), "asking again adds nothing");
        }
    }
}
