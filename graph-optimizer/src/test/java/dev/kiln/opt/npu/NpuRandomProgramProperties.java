package dev.kiln.opt.npu;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.trace.RandomProgramProperties;

/** The tracer's random programs (views, reductions, softmax, matmul, broadcasting, recompiles) on the NPU backend. */
class NpuRandomProgramProperties extends RandomProgramProperties {
    @Override
    protected CompileOptions options() { return CompileOptions.defaults().backend(Backend.NPU); }
}
