package dev.kiln.npu.device;

import dev.kiln.npu.Parallel;
import jdk.incubator.vector.FloatVector;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The virtual NPU the CPU plays: {@code workers} cores, each with {@code sramBytesPerCore}
 * of on-chip SRAM (the CPU's per-core L2, where the tiles of a fused kernel live),
 * vector units {@code vectorBits} wide, and DRAM reached through DMA at
 * {@code dmaBytesPerSecond} (for the cost model; the copies themselves run at memory speed).
 */
public record NpuDevice(long sramBytesPerCore, int vectorBits, int workers, double dmaBytesPerSecond) {
    private static final long DEFAULT_SRAM = 1L << 20;
    /** A typical sustained DRAM bandwidth of one socket, when nothing better is known. */
    private static final double DEFAULT_DMA_BYTES_PER_SECOND = 20e9;

    public NpuDevice {
        if (sramBytesPerCore < 64 * 1024) throw new IllegalArgumentException("SRAM per core must be at least 64 KiB, got " + sramBytesPerCore);
        if (vectorBits < 64 || Integer.bitCount(vectorBits) != 1) throw new IllegalArgumentException("vector width must be a power of two >= 64 bits, got " + vectorBits);
        if (workers < 1) throw new IllegalArgumentException("workers must be >= 1, got " + workers);
        if (!(dmaBytesPerSecond > 0)) throw new IllegalArgumentException("DMA bandwidth must be positive, got " + dmaBytesPerSecond);
    }

    private static final NpuDevice DEFAULT = new NpuDevice(
            Long.getLong("kiln.npu.sramBytes", detectL2PerCore()),
            FloatVector.SPECIES_PREFERRED.vectorBitSize(),
            Parallel.workers(),
            DEFAULT_DMA_BYTES_PER_SECOND);

    /** The device of this machine: L2 per core (1 MiB if unknown), the preferred vector width, the worker pool. */
    public static NpuDevice current() { return DEFAULT; }

    /** SRAM per core in float32 elements. */
    public int sramFloats() { return (int) Math.min(Integer.MAX_VALUE - 8, sramBytesPerCore / Float.BYTES); }

    /** Estimated seconds to move {@code bytes} between DRAM and SRAM. */
    public double dmaSeconds(long bytes) { return bytes / dmaBytesPerSecond; }

    /** Linux reports caches in sysfs; index2 is the unified L2 on x86 and arm64. Shared L2s are divided among their cores. */
    private static long detectL2PerCore() {
        Path dir = Path.of("/sys/devices/system/cpu/cpu0/cache/index2");
        try {
            long size = parseSize(Files.readString(dir.resolve("size")).trim());
            int sharers = countCpus(Files.readString(dir.resolve("shared_cpu_list")).trim());
            return Math.max(64 * 1024, size / Math.max(1, sharers));
        } catch (IOException | RuntimeException e) {
            return DEFAULT_SRAM;
        }
    }

    static long parseSize(String s) {
        String t = s.toUpperCase(Locale.ROOT);
        long unit = t.endsWith("K") ? 1024 : t.endsWith("M") ? 1024 * 1024 : 1;
        String digits = unit == 1 ? t : t.substring(0, t.length() - 1);
        return Long.parseLong(digits) * unit;
    }

    /** CPUs in a list like {@code 0-3,8}. */
    static int countCpus(String list) {
        int n = 0;
        for (String part : list.split(",")) {
            int dash = part.indexOf('-');
            n += dash < 0 ? 1 : Integer.parseInt(part.substring(dash + 1)) - Integer.parseInt(part.substring(0, dash)) + 1;
        }
        return n;
    }

    // Written out: a record's generated toString is bootstrapped on its first call (6 to 12 ms
    // in a fresh JVM), and the kernel cache's key of every first compiled call reads this one.
    @Override
    public String toString() {
        return new StringBuilder("NpuDevice[sramBytesPerCore=").append(sramBytesPerCore).append(", vectorBits=").append(vectorBits)
                .append(", workers=").append(workers).append(", dmaBytesPerSecond=").append(dmaBytesPerSecond).append(']').toString();
    }
}
