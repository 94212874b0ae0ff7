package dev.kiln.samples.jmh;

import dev.kiln.tensor.Tensor;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
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
 * float32 matmul throughput. The {@code flops} counter reads directly in GFLOP/s
 * (floating-point operations per nanosecond). {@code rightOperand=transposed} is
 * {@code x.matmul(w.mT())} with w [N, K] contiguous, as {@code F.linear} computes it.
 *
 * <pre>
 * mvn -o -q -pl samples -am package -DskipTests
 * java -cp "samples/target/classes:samples/target/lib/*" org.openjdk.jmh.Main MatMulBenchmark -wi 3 -i 5 -f 1
 *   one core:             add  -jvmArgsAppend -Dkiln.npu.workers=1
 *   without bounds checks: add -jvmArgsAppend -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsPrepend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class MatMulBenchmark {

    /** M x K x N. */
    @Param({"768x1024x1024", "64x1024x4096", "64x4096x1024"})
    public String shape;

    @Param({"contiguous", "transposed"})
    public String rightOperand;

    private Tensor a, b;
    private long flopsPerProduct;

    /** Floating-point operations done, reported as a rate. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Flops {
        public long flops;

        @Setup(Level.Iteration)
        public void reset() { flops = 0; }
    }

    @Setup
    public void setUp() {
        String[] mkn = shape.split("x");
        int m = Integer.parseInt(mkn[0]), k = Integer.parseInt(mkn[1]), n = Integer.parseInt(mkn[2]);
        a = Tensor.randn(1, m, k);
        b = rightOperand.equals("transposed") ? Tensor.randn(2, n, k).mT() : Tensor.randn(2, k, n);
        flopsPerProduct = 2L * m * n * k;
    }

    @Benchmark
    public Tensor matmul(Flops counter) {
        counter.flops += flopsPerProduct;
        return a.matmul(b);
    }
}
