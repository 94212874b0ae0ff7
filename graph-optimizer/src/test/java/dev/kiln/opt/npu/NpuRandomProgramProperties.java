package dev.kiln.opt.npu;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Kiln;
import dev.kiln.trace.RandomProgramProperties;
import net.jqwik.api.Example;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tracer's random programs (views, reductions, softmax, matmul, broadcasting, recompiles) on the NPU backend. */
class NpuRandomProgramProperties extends RandomProgramProperties {
    @Override
    protected CompileOptions options() { return CompileOptions.defaults().backend(Backend.NPU); }

    /**
     * The tracer's test classes, on this class path too, register a stand-in NPU backend; the
     * service loader finds this module's compiler first. Were that order to change, the
     * properties above would quietly test the stand-in.
     */
    @Example
    void theProgramsRunOnTheNpuCompiler() {
        NpuGraphCompiler.Counts before = NpuGraphCompiler.counts();
        Sample s = sample(7);
        Kiln.compileN(s.program(), options()).apply(s.inputs());
        NpuGraphCompiler.Counts after = NpuGraphCompiler.counts();
        assertTrue(after.compiles() + after.memoryHits() + after.diskHits() > before.compiles() + before.memoryHits() + before.diskHits(),
                "the program went to " + NpuGraphCompiler.class.getSimpleName());
    }
}
