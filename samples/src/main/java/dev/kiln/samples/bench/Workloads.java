package dev.kiln.samples.bench;

import dev.kiln.npu.Parallel;
import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Fn1;
import dev.kiln.Kiln;
import dev.kiln.samples.DecoderBlock;
import dev.kiln.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

import static dev.kiln.nn.F.gelu;

/**
 * The benchmark workloads W0 to W4 (see the workload table): machine limits, a
 * pointwise chain, an MLP, attention and a decoder block. Inputs are random with fixed seeds; every figure is
 * computed from the sizes actually run.
 */
public final class Workloads {

    /** System property the Vector API reads once at start-up; "0" turns its bounds checks off. */
    public static final String OOB_CHECK_PROPERTY = "jdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK";

    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    /** Independent FMA chains per thread: enough to cover FMA latency times the FMA ports. */
    private static final int FMA_CHAINS = 12;

    /** The workload ids that can be benchmarked now. */
    public enum Id { W0, W1, W2, W3, W4 }

    /** Eager runs op by op; compiled traces once with {@code Kiln.compile} on the NPU backend and replays. W0 has no modes. */
    public enum Mode { EAGER, COMPILED }

    /**
     * Problem sizes: {@link #standard()} is the workload table's; {@link #small()} shrinks
     * everything for smoke tests.
     */
    public record Sizes(long streamFloats, long fmaIterations, int pointwiseElements, int mlpRows, int mlpModel, int mlpHidden,
                        int attentionSeq, int blockSeq) {
        public static Sizes standard() { return new Sizes(64L << 20, 40_000_000L, 4_194_304, 64, 1024, 4096, 1024, 256); }
        public static Sizes small() { return new Sizes(1L << 16, 100_000L, 1 << 14, 8, 64, 256, 64, 16); }
    }

    private final Sizes sizes;
    private final Timing timing;
    private final boolean oobChecks;
    /** Keeps results reachable so that no work can be optimised away. */
    private volatile Object sink;

    private final List<Mode> modes;

    public Workloads(Sizes sizes, Timing timing) { this(sizes, timing, List.of(Mode.EAGER)); }

    public Workloads(Sizes sizes, Timing timing, List<Mode> modes) {
        this.sizes = sizes;
        this.timing = timing;
        this.modes = List.copyOf(modes);
        this.oobChecks = !"0".equals(System.getProperty(OOB_CHECK_PROPERTY));
    }

    public List<BenchResult> run(Id id) {
        return switch (id) {
            case W0 -> machineLimits();
            case W1 -> modes.stream().map(this::pointwiseChain).toList();
            case W2 -> modes.stream().map(this::mlp).toList();
            case W3 -> attention();
            case W4 -> modes.stream().map(this::decoderBlock).toList();
        };
    }

    private BenchResult result(Id id, String name, Timing.Stats stats, Double gbps, Double gflops) {
        return result(id, name, Mode.EAGER, stats, gbps, gflops);
    }

    private BenchResult result(Id id, String name, Mode mode, Timing.Stats stats, Double gbps, Double gflops) {
        return new BenchResult(id.name(), name, mode.name().toLowerCase(java.util.Locale.ROOT), stats, gbps, gflops, oobChecks,
                Parallel.workers());
    }

    private static final CompileOptions NPU = CompileOptions.defaults().backend(Backend.NPU);

    /** {@code fn} itself in eager mode, compiled on the NPU backend in compiled mode. */
    private static Fn1<Tensor> inMode(Mode mode, Fn1<Tensor> fn) {
        return mode == Mode.COMPILED ? Kiln.compile(fn, NPU) : fn;
    }

    // ---------------------------------------------------------------- W0

    /** STREAM copy (8 bytes per element) and triad (12 bytes), then the peak FP32 FMA rate. */
    private List<BenchResult> machineLimits() {
        long n = sizes.streamFloats();
        Timing.Stats copy, triad;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment a = arena.allocate(n * 4, 64), b = arena.allocate(n * 4, 64), c = arena.allocate(n * 4, 64);
            // Touch every page from the worker threads first, so that the timed runs measure bandwidth, not page faults.
            fill(b, n, 1f);
            fill(c, n, 2f);
            fill(a, n, 0f);
            copy = timing.measure(() -> copy(b, a, n));
            triad = timing.measure(() -> triad(a, b, c, 3f, n));
        }
        long perThread = sizes.fmaIterations();
        double flops = 2.0 * SPECIES.length() * FMA_CHAINS * perThread * Parallel.workers();
        Timing.Stats fma = timing.measure(() -> sink = fmaOnAllWorkers(perThread));
        return List.of(
                result(Id.W0, "copy", copy, BenchResult.perSecondAtMedian(8.0 * n, copy), null),
                result(Id.W0, "triad", triad, BenchResult.perSecondAtMedian(12.0 * n, triad), null),
                result(Id.W0, "fma_peak", fma, null, BenchResult.perSecondAtMedian(flops, fma)));
    }

    private static void fill(MemorySegment s, long n, float v) {
        Parallel.forRange(n, n, (from, to) -> {
            for (long i = from; i < to; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT, i, v);
        });
    }

    private static void copy(MemorySegment src, MemorySegment dst, long n) {
        Parallel.forRange(n, n, (from, to) -> {
            long i = from, bound = from + (to - from) / SPECIES.length() * SPECIES.length();
            for (; i < bound; i += SPECIES.length()) {
                FloatVector.fromMemorySegment(SPECIES, src, i * 4, ORDER).intoMemorySegment(dst, i * 4, ORDER);
            }
            for (; i < to; i++) dst.setAtIndex(ValueLayout.JAVA_FLOAT, i, src.getAtIndex(ValueLayout.JAVA_FLOAT, i));
        });
    }

    /** {@code a = b + s * c}. */
    private static void triad(MemorySegment a, MemorySegment b, MemorySegment c, float s, long n) {
        FloatVector vs = FloatVector.broadcast(SPECIES, s);
        Parallel.forRange(n, n, (from, to) -> {
            long i = from, bound = from + (to - from) / SPECIES.length() * SPECIES.length();
            for (; i < bound; i += SPECIES.length()) {
                FloatVector vc = FloatVector.fromMemorySegment(SPECIES, c, i * 4, ORDER);
                FloatVector vb = FloatVector.fromMemorySegment(SPECIES, b, i * 4, ORDER);
                vc.fma(vs, vb).intoMemorySegment(a, i * 4, ORDER);
            }
            for (; i < to; i++) {
                a.setAtIndex(ValueLayout.JAVA_FLOAT, i,
                        Math.fma(s, c.getAtIndex(ValueLayout.JAVA_FLOAT, i), b.getAtIndex(ValueLayout.JAVA_FLOAT, i)));
            }
        });
    }

    private static float[] fmaOnAllWorkers(long iterations) {
        int workers = Parallel.workers();
        float[] results = new float[workers];
        // One unit per worker and a cost far above the serial threshold: every worker runs one chain set.
        Parallel.forRange(workers, Long.MAX_VALUE, (from, to) -> {
            for (long w = from; w < to; w++) results[(int) w] = fmaChains(iterations);
        });
        return results;
    }

    /** {@link #FMA_CHAINS} independent register-resident FMA chains; they converge to 10, so no value degenerates. */
    private static float fmaChains(long iterations) {
        FloatVector m = FloatVector.broadcast(SPECIES, 0.9f), c = FloatVector.broadcast(SPECIES, 1f);
        FloatVector a0 = FloatVector.broadcast(SPECIES, 0f), a1 = FloatVector.broadcast(SPECIES, 1f),
                a2 = FloatVector.broadcast(SPECIES, 2f), a3 = FloatVector.broadcast(SPECIES, 3f),
                a4 = FloatVector.broadcast(SPECIES, 4f), a5 = FloatVector.broadcast(SPECIES, 5f),
                a6 = FloatVector.broadcast(SPECIES, 6f), a7 = FloatVector.broadcast(SPECIES, 7f),
                a8 = FloatVector.broadcast(SPECIES, 8f), a9 = FloatVector.broadcast(SPECIES, 9f),
                a10 = FloatVector.broadcast(SPECIES, 10f), a11 = FloatVector.broadcast(SPECIES, 11f);
        for (long i = 0; i < iterations; i++) {
            a0 = a0.fma(m, c);
            a1 = a1.fma(m, c);
            a2 = a2.fma(m, c);
            a3 = a3.fma(m, c);
            a4 = a4.fma(m, c);
            a5 = a5.fma(m, c);
            a6 = a6.fma(m, c);
            a7 = a7.fma(m, c);
            a8 = a8.fma(m, c);
            a9 = a9.fma(m, c);
            a10 = a10.fma(m, c);
            a11 = a11.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .reduceLanes(VectorOperators.ADD);
    }

    // ---------------------------------------------------------------- W1

    /** {@code y = gelu(x*a + b) * sigmoid(x) + x}, counting 8 bytes (one read, one write) per element. */
    private BenchResult pointwiseChain(Mode mode) { return pointwiseChain(mode, false); }

    private BenchResult pointwiseChain(Mode mode, boolean firstCall) {
        int n = sizes.pointwiseElements();
        Tensor x = Tensor.randn(1, n);
        double a = 0.75, b = 0.25;
        Fn1<Tensor> chain = t -> gelu(t.mul(a).add(b)).mul(t.sigmoid()).add(t);
        long t0 = System.nanoTime();
        Fn1<Tensor> run = inMode(mode, chain);
        if (firstCall) sink = run.apply(x);
        double firstMs = (System.nanoTime() - t0) / 1e6;
        Timing.Stats t = timing.measure(() -> sink = run.apply(x));
        BenchResult r = result(Id.W1, "pointwise_chain", mode, t, BenchResult.perSecondAtMedian(8.0 * n, t), null);
        return firstCall ? r.withFirstCallMs(firstMs) : r;
    }

    /** The workloads {@link #firstCall} measures. */
    public static final List<Id> FIRST_CALL_WORKLOADS = List.of(Id.W1, Id.W2);

    /**
     * {@code id} in each mode with its first call timed (from {@code Kiln.compile}, so
     * compilation is included, to the first result): meaningful in a fresh JVM, where
     * nothing is compiled by the JIT yet. W1 and W2.
     */
    public List<BenchResult> firstCall(Id id) {
        return switch (id) {
            case W1 -> modes.stream().map(m -> pointwiseChain(m, true)).toList();
            case W2 -> modes.stream().map(m -> mlp(m, true)).toList();
            default -> throw new IllegalArgumentException("first calls are measured for " + FIRST_CALL_WORKLOADS + ", not " + id);
        };
    }

    // ---------------------------------------------------------------- W3

    /**
     * Causal attention prefill, q, k, v [1, 8, seq, 64]: the attention kernel
     * ({@code scaled_dot_product_attention}, online softmax, causal blocks skipped) against
     * the unfused pattern a user would write (matmul, scale, mask, softmax, matmul), both
     * eager. GFLOP/s count the causal half, 2·2·8·seq²·64 / 2.
     */
    private List<BenchResult> attention() {
        int seq = sizes.attentionSeq();
        Tensor q = Tensor.randn(7, 1, 8, seq, 64), k = Tensor.randn(8, 1, 8, seq, 64), v = Tensor.randn(9, 1, 8, seq, 64);
        Tensor masked = Tensor.ones(seq, seq).tril().eq(0.0), minusInf = Tensor.full(Double.NEGATIVE_INFINITY, 1);
        double flops = 2.0 * 2 * 8 * seq * (double) seq * 64 / 2;
        Timing.Stats kernel = timing.measure(() -> sink = dev.kiln.nn.F.scaledDotProductAttention(q, k, v, null, true, null, false));
        Timing.Stats pattern = timing.measure(() -> sink = dev.kiln.nn.F.softmax(
                Tensor.where(masked, minusInf, q.matmul(k.mT()).mul(0.125)), -1).matmul(v));
        return List.of(result(Id.W3, "attention_kernel", kernel, null, BenchResult.perSecondAtMedian(flops, kernel)),
                result(Id.W3, "unfused_pattern", pattern, null, BenchResult.perSecondAtMedian(flops, pattern)));
    }

    // ---------------------------------------------------------------- W2

    /** {@code gelu(x @ W1 + b1) @ W2 + b2}, counting the two matmuls' flops. */
    private BenchResult mlp(Mode mode) { return mlp(mode, false); }

    private BenchResult mlp(Mode mode, boolean firstCall) {
        int rows = sizes.mlpRows(), model = sizes.mlpModel(), hidden = sizes.mlpHidden();
        Tensor x = Tensor.randn(2, rows, model);
        Tensor w1 = Tensor.randn(3, model, hidden).mul(1 / Math.sqrt(model)), b1 = Tensor.randn(4, hidden).mul(0.1);
        Tensor w2 = Tensor.randn(5, hidden, model).mul(1 / Math.sqrt(hidden)), b2 = Tensor.randn(6, model).mul(0.1);
        Fn1<Tensor> mlp = in -> gelu(in.matmul(w1).add(b1)).matmul(w2).add(b2);
        long t0 = System.nanoTime();
        Fn1<Tensor> run = inMode(mode, mlp);
        if (firstCall) sink = run.apply(x);
        double firstMs = (System.nanoTime() - t0) / 1e6;
        Timing.Stats t = timing.measure(() -> sink = run.apply(x));
        double flops = 2.0 * rows * model * hidden * 2;
        BenchResult r = result(Id.W2, "mlp", mode, t, null, BenchResult.perSecondAtMedian(flops, t));
        return firstCall ? r.withFirstCallMs(firstMs) : r;
    }

    // ---------------------------------------------------------------- W4

    /** The LLaMA-style decoder block of {@code kiln demo} on {@code [1, seq, 512]}, compiled as a module in compiled mode. */
    private BenchResult decoderBlock(Mode mode) {
        DecoderBlock.Config cfg = DecoderBlock.Config.w4();
        int seq = sizes.blockSeq();
        Tensor x = Tensor.randn(11, 1, seq, cfg.dModel()), positions = Tensor.arange(seq);
        DecoderBlock block = new DecoderBlock(cfg, 42);
        DecoderBlock run = mode == Mode.COMPILED ? Kiln.compile(block, NPU) : block;
        Timing.Stats t = timing.measure(() -> sink = run.forward(x, positions));
        return result(Id.W4, "decoder_block", mode, t, null, null);
    }
}
