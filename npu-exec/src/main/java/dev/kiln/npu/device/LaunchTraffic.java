package dev.kiln.npu.device;

/** The DRAM traffic of one kernel launch. */
public record LaunchTraffic(String kernel, long bytesRead, long bytesWritten) {
    public long bytes() { return bytesRead + bytesWritten; }
}
