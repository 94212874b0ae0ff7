package dev.kiln.npu.device;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class NpuDeviceTest {
    @Test
    void describesItselfAsARecordDoesForKernelCacheKeys() {
        // The text is part of every compiled artifact's identity: written out, it must stay the record's own form.
        assertEquals("NpuDevice[sramBytesPerCore=65536, vectorBits=256, workers=3, dmaBytesPerSecond=1.5E10]",
                new NpuDevice(65536, 256, 3, 1.5e10).toString());
    }
}
