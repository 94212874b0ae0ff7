package dev.kiln.samples.jmh;

import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.nn.F;
import dev.kiln.ir.Graph;
import dev.kiln.ops.Dispatch;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.TraceSession;
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

import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The compiler's own overheads: calling a compiled identity-like graph with 16 inputs
 * (guard check plus replay, no kernel runs), and tracing (recording ops into a graph).
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
    /** Ops recorded per trace in {@link #trace64Ops}. */
    public static final int TRACED_OPS = 64;

    private FnN<Tensor[]> identity16;
    private Object[] inputs16;
    private Tensor chainInput;

    @Setup
    public void setUp() {
        identity16 = Kiln.compileN(args -> {
            Tensor[] out = new Tensor[args.length];
            for (int i = 0; i < args.length; i++) out[i] = (Tensor) args[i];
            return out;
        });
        inputs16 = new Object[16];
        for (int i = 0; i < 16; i++) inputs16[i] = Tensor.randn(i, 8, 64);
        identity16.apply(inputs16);
        chainInput = Tensor.randn(1, 64, 64);
    }

    @Benchmark
    public Tensor[] dispatch16Inputs() {
        return identity16.apply(inputs16);
    }

    /** Records {@link #TRACED_OPS} ops into a graph (no execution); divide by 64 for the cost per op. */
    @Benchmark
    public Graph trace64Ops() {
        TraceSession session = new TraceSession(true, g -> {
            throw new IllegalStateException("no segment runs while tracing");
        });
        Tensor x = session.input(chainInput);
        Tensor y = Dispatch.intercepting(session, () -> {
            Tensor t = x;
            for (int i = 0; i < TRACED_OPS / 2; i++) t = F.relu(t.mul(1.0001));
            return t;
        });
        return session.graph(List.of(y));
    }
}
