package dev.kiln.samples.jmh;

import dev.kiln.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * Eager copies and pointwise ops of a transposed square float32 matrix, against the same op on
 * the contiguous matrix: what the blocked copy of transposes ({@code TransposedCopy}: from 1 MiB
 * with columns a multiple of 2 KiB apart, any view from 32 MiB) buys, and what other transposes
 * cost run by run.
 *
 * <pre>
 * mvn -o -q -pl samples -am package -DskipTests
 * java -cp "samples/target/classes:samples/target/lib/*" org.openjdk.jmh.Main TransposeBenchmark -wi 3 -i 5 -f 1
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsPrepend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "-XX:+ExplicitGCInvokesConcurrent"})
public class TransposeBenchmark {

    /** Rows and columns: run by run (1000, 1500), blocked (2048, 3000). */
    @Param({"1000", "1500", "2048", "3000"})
    public int n;

    private Tensor x;

    @Setup
    public void setUp() {
        x = Tensor.randn(1, n, n);
    }

    @Benchmark
    public Tensor contiguousOfTranspose() { return x.transpose(0, 1).contiguous(); }

    @Benchmark
    public Tensor addToTranspose() { return x.transpose(0, 1).add(1.0); }

    @Benchmark
    public Tensor addToContiguous() { return x.add(1.0); }
}
