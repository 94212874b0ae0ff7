package dev.kiln.opt.npu;

import dev.kiln.Backend;
import dev.kiln.ir.Graph;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.opt.Pipeline;
import dev.kiln.trace.GraphCompiler;

/**
 * The NPU backend: the standard optimisation pipeline, pointwise fusion, lowering to a
 * {@link KernelProgram}, run by an {@link NpuExecutable} on this machine's device.
 */
public final class NpuGraphCompiler implements GraphCompiler {
    private final NpuDevice device;

    /** For {@link java.util.ServiceLoader}: the current machine's device. */
    public NpuGraphCompiler() { this(NpuDevice.current()); }

    public NpuGraphCompiler(NpuDevice device) { this.device = device; }

    @Override
    public Backend backend() { return Backend.NPU; }

    /** The kernel program for {@code g}: what {@link #compile} runs, and what a kernel cache would store. */
    public KernelProgram lower(Graph g) {
        Graph optimised = Pipeline.standard().run(g).graph();
        return Lowering.lower(optimised, device);
    }

    @Override
    public NpuExecutable compile(Graph g) { return new NpuExecutable(lower(g), device); }
}
