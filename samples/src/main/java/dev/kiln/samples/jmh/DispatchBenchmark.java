package dev.kiln.samples.jmh;

import dev.kiln.FnN;
import dev.kiln.ir.Graph;
import dev.kiln.samples.bench.CompilerOverheads;
import dev.kiln.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * The compiler's own overheads, as {@code kiln bench dispatch|trace} measures them: calling
 * a compiled identity-like graph with 16 inputs (guard check plus replay, no kernel runs),
 * and tracing {@link CompilerOverheads#OPS_PER_TRACE} ops into a graph.
 *
 * <pre>
 * java -cp "samples/target/classes:samples/target/lib/*" org.openjdk.jmh.Main DispatchBenchmark -wi 3 -i 5 -f 1
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsPrepend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class DispatchBenchmark {
    private FnN<Tensor[]> identity16;
    private Object[] inputs16;
    private Tensor chainInput;

    @Setup
    public void setUp() {
        identity16 = CompilerOverheads.compiledIdentity();
        inputs16 = CompilerOverheads.sixteenInputs();
        identity16.apply(inputs16);
        chainInput = Tensor.randn(1, 64, 64);
    }

    @Benchmark
    public Tensor[] dispatch16Inputs() {
        return identity16.apply(inputs16);
    }

    /** Divide by {@link CompilerOverheads#OPS_PER_TRACE} for the cost per op. */
    @Benchmark
    public Graph trace64Ops() {
        return CompilerOverheads.traceChain(chainInput);
    }
}
