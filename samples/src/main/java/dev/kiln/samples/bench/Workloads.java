package dev.kiln.samples.bench;

import dev.kiln.nn.F;
import dev.kiln.nn.Serving;
import dev.kiln.npu.Parallel;
import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.kernels.attention.FlashAttention;
import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Fn1;
import dev.kiln.Kiln;
import dev.kiln.samples.DecoderBlock;
import dev.kiln.samples.DecoderModel;
import dev.kiln.samples.PagedKvCache;
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
 * The benchmark workloads W0 to W5 (see the workload table): machine limits, a pointwise
 * chain, an MLP, causal attention, a decoder block and a model's decode throughput; and paged decode attention against
 * contiguous KV. Inputs are random with fixed seeds; every figure is
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
    public enum Id { W0, W1, W2, W3, W4, W5, PAGED }

    /** Eager runs op by op; compiled traces once with {@code Kiln.compile} on the NPU backend and replays. W0 has no modes. */
    public enum Mode {
        EAGER, COMPILED,
        /** Compiled with {@link CompileOptions#freezeWeights}: forms of the weights derived once are reused. */
        FROZEN
    }

    /**
     * Problem sizes: {@link #standard()} is the workload table's; {@link #small()} shrinks
     * everything for smoke tests.
     */
    public record Sizes(long streamFloats, long fmaIterations, int pointwiseElements, int mlpRows, int mlpModel, int mlpHidden,
                        int attentionSeq, int blockSeq, DecoderModel.Config decodeModel, int decodeContext, int decodeSteps) {
        public static Sizes standard() {
            return new Sizes(64L << 20, 40_000_000L, 4_194_304, 64, 1024, 4096, 1024, 256, DecoderModel.Config.w5(), 256, 16);
        }

        public static Sizes small() {
            return new Sizes(1L << 16, 100_000L, 1 << 14, 8, 64, 256, 64, 16,
                    new DecoderModel.Config(64, 2, new DecoderBlock.Config(32, 4, 2, 8, 48, 10_000, 1e-5)), 16, 4);
        }
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
            case W1 -> sideBySide(modes.stream().map(m -> pointwiseChain(m, false)).toList());
            case W2 -> sideBySide(modes.stream().map(m -> mlp(m, false)).toList());
            case W3 -> attention();
            case W4 -> sideBySide(modes.stream().map(this::decoderBlock).toList());
            case W5 -> decodeThroughput();
            case PAGED -> pagedDecode();
        };
    }

    private BenchResult result(Id id, String name, Timing.Stats stats, Double gbps, Double gflops) {
        return result(id, name, Mode.EAGER, stats, gbps, gflops);
    }

    private BenchResult result(Id id, String name, Mode mode, Timing.Stats stats, Double gbps, Double gflops) {
        return new BenchResult(id.name(), name, mode.name().toLowerCase(java.util.Locale.ROOT), stats, gbps, gflops, oobChecks,
                Parallel.workers());
    }

    /**
     * A workload set up in one mode: the call to time, how long its first call took (when
     * timed), and its result line from the timing.
     */
    private record Prepared(Runnable call, Double firstCallMs, java.util.function.Function<Timing.Stats, BenchResult> result) {}

    /**
     * Times the modes' calls interleaved (see {@link Timing#measureInterleaved}): ratios between
     * them are what count. Beside eager, each compiled mode's line carries
     * {@code speedup_vs_eager}, the median over rounds of eager's time over its own. Every line
     * carries {@code jit_ms_during_runs} and {@code scalar_pieces_during_runs} (see {@link Timing.Rounds}).
     */
    private List<BenchResult> sideBySide(List<Prepared> prepared) {
        Timing.Rounds rounds = timing.measureInterleaved(prepared.stream().map(Prepared::call).toList());
        int eager = modes.indexOf(Mode.EAGER);
        List<BenchResult> out = new java.util.ArrayList<>();
        for (int i = 0; i < prepared.size(); i++) {
            BenchResult r = prepared.get(i).result().apply(rounds.stats(i));
            if (prepared.get(i).firstCallMs() != null) r = r.withFirstCallMs(prepared.get(i).firstCallMs());
            if (eager >= 0 && i != eager) r = r.with("speedup_vs_eager", rounds.pairedRatio(eager, i));
            // What could still move the figures: compilations during the measured runs, kernels still choosing their scalar twins.
            out.add(r.with("jit_ms_during_runs", rounds.jitMillis()).with("scalar_pieces_during_runs", rounds.scalarPieces()));
        }
        return out;
    }

    private static final CompileOptions NPU = CompileOptions.defaults().backend(Backend.NPU);

    /** The NPU options of a compiled mode. */
    private static CompileOptions options(Mode mode) { return NPU.freezeWeights(mode == Mode.FROZEN); }

    /** {@code fn} itself in eager mode, compiled on the NPU backend in the compiled modes. */
    private static Fn1<Tensor> inMode(Mode mode, Fn1<Tensor> fn) {
        return mode == Mode.EAGER ? fn : Kiln.compile(fn, options(mode));
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
    private Prepared pointwiseChain(Mode mode, boolean firstCall) {
        int n = sizes.pointwiseElements();
        Tensor x = Tensor.randn(1, n);
        double a = 0.75, b = 0.25;
        Fn1<Tensor> chain = t -> gelu(t.mul(a).add(b)).mul(t.sigmoid()).add(t);
        long t0 = System.nanoTime();
        Fn1<Tensor> run = inMode(mode, chain);
        if (firstCall) sink = run.apply(x);
        double firstMs = (System.nanoTime() - t0) / 1e6;
        return new Prepared(() -> sink = run.apply(x), firstCall ? firstMs : null,
                t -> result(Id.W1, "pointwise_chain", mode, t, BenchResult.perSecondAtMedian(8.0 * n, t), null));
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
            case W1 -> sideBySide(modes.stream().map(m -> pointwiseChain(m, true)).toList());
            case W2 -> sideBySide(modes.stream().map(m -> mlp(m, true)).toList());
            default -> throw new IllegalArgumentException("first calls are measured for " + FIRST_CALL_WORKLOADS + ", not " + id);
        };
    }

    // ---------------------------------------------------------------- W3

    /** W3's heads and head size. */
    private static final int HEADS = 8, HEAD_DIM = 64;
    /** The long sequence at which W3 reports memory: eight times the timed one (8192 in the standard sizes). */
    private static final int LONG_FACTOR = 8;

    /**
     * Causal attention prefill, q, k, v [1, 8, seq, 64]: the FlashAttention kernel
     * ({@code scaled_dot_product_attention}: SRAM tiles, online softmax, causal blocks
     * skipped) against the unfused pattern a user would write (matmul, scale, mask, softmax,
     * matmul), both eager. GFLOP/s count the causal half, 2·2·8·seq²·64 / 2. DRAM bytes:
     * the kernel's as its DMA counters report them for one call; the pattern's as the sum of
     * every eager op's input and output bytes (each op reads and writes DRAM). A third line
     * runs the kernel at 8 × seq and reports its extra memory (output plus each worker's
     * SRAM working set: linear in seq) beside the pattern's least peak (two score tensors
     * alive at once, an op's input and output: quadratic), computed from the tensor sizes,
     * since the pattern itself would need gigabytes there.
     */
    private List<BenchResult> attention() {
        int seq = sizes.attentionSeq();
        Tensor q = Tensor.randn(7, 1, HEADS, seq, HEAD_DIM), k = Tensor.randn(8, 1, HEADS, seq, HEAD_DIM);
        Tensor v = Tensor.randn(9, 1, HEADS, seq, HEAD_DIM);
        Tensor masked = Tensor.ones(seq, seq).tril().eq(0.0), minusInf = Tensor.full(Double.NEGATIVE_INFINITY, 1);
        double flops = causalFlops(seq);
        Timing.Stats kernel = timing.measure(() -> sink = F.scaledDotProductAttention(q, k, v, null, true, null, false));
        Timing.Stats pattern = timing.measure(() -> sink = F.softmax(
                Tensor.where(masked, minusInf, q.matmul(k.mT()).mul(0.125)), -1).matmul(v));
        long before = Dma.totalBytes();
        sink = F.scaledDotProductAttention(q, k, v, null, true, null, false);
        long kernelBytes = Dma.totalBytes() - before;

        int longSeq = LONG_FACTOR * seq;
        Tensor ql = Tensor.randn(10, 1, HEADS, longSeq, HEAD_DIM), kl = Tensor.randn(11, 1, HEADS, longSeq, HEAD_DIM);
        Tensor vl = Tensor.randn(12, 1, HEADS, longSeq, HEAD_DIM);
        Timing.Stats longKernel = new Timing(Math.min(1, timing.warmup()), Math.min(3, timing.runs()))
                .measure(() -> sink = F.scaledDotProductAttention(ql, kl, vl, null, true, null, false));
        before = Dma.totalBytes();
        sink = F.scaledDotProductAttention(ql, kl, vl, null, true, null, false);
        long longBytes = Dma.totalBytes() - before;
        NpuDevice device = NpuDevice.current();
        FlashAttention.Tiling tiling = FlashAttention.Tiling.plan(device, HEADS, longSeq, longSeq, HEAD_DIM, HEAD_DIM, 0);
        long outputBytes = (long) HEADS * longSeq * HEAD_DIM * Float.BYTES;
        long kernelExtra = outputBytes + device.workers() * tiling.workspaceFloats(HEAD_DIM, HEAD_DIM) * Float.BYTES;
        long scoreBytes = (long) HEADS * longSeq * longSeq * Float.BYTES;
        long patternPeak = 2 * scoreBytes + (long) longSeq * longSeq + outputBytes;

        return List.of(
                result(Id.W3, "attention_kernel", kernel, null, BenchResult.perSecondAtMedian(flops, kernel))
                        .with("dram_bytes", kernelBytes),
                result(Id.W3, "unfused_pattern", pattern, null, BenchResult.perSecondAtMedian(flops, pattern))
                        .with("dram_bytes", unfusedPatternBytes(seq)),
                result(Id.W3, "attention_kernel_seq" + longSeq, longKernel, null, BenchResult.perSecondAtMedian(causalFlops(longSeq), longKernel))
                        .with("dram_bytes", longBytes)
                        .with("extra_memory_bytes", kernelExtra)
                        .with("unfused_peak_memory_bytes", patternPeak));
    }

    private static double causalFlops(int seq) { return 2.0 * 2 * HEADS * seq * (double) seq * HEAD_DIM / 2; }

    /**
     * Bytes the unfused pattern moves between eager ops: q·kᵀ reads q and k and writes the
     * scores; the scale, the mask (reading the bool mask too) and the softmax each read and
     * write the scores; the last matmul reads the weights and v and writes the output.
     */
    private static long unfusedPatternBytes(int seq) {
        long qkv = (long) HEADS * seq * HEAD_DIM * Float.BYTES, scores = (long) HEADS * seq * seq * Float.BYTES;
        long mask = (long) seq * seq;
        return (2 * qkv + scores) + 2 * scores + (2 * scores + mask) + 2 * scores + (scores + qkv + qkv);
    }

    // ---------------------------------------------------------------- paged decode

    /**
     * Paged decode: one new token for each of 8 sequences of {@code 2 × attentionSeq}
     * cached tokens (2048 in the standard sizes), 32 query heads over 8 KV heads of size
     * 128, the KV cache in shuffled blocks of 16 read through the block table, against the
     * same kernel on contiguous KV (one block per sequence) and against the FlashAttention
     * kernel on contiguous [B, Hkv, ctx, D] tensors. GB/s count the K and V bytes read.
     */
    private List<BenchResult> pagedDecode() {
        int batch = 8, ctx = 2 * sizes.attentionSeq(), blockSize = 16, heads = 32, kvHeads = 8, dim = 128;
        int perSeq = ctx / blockSize;
        java.util.Random r = new java.util.Random(13);
        float[] k = randomFloats(r, batch * kvHeads * ctx * dim), v = randomFloats(r, k.length);
        Tensor query = Tensor.of(randomFloats(r, batch * heads * dim), batch, heads, dim);
        // The blocks of all sequences, shuffled: a sequence's blocks lie anywhere in the cache.
        int[] table = new int[batch * perSeq];
        for (int i = 0; i < table.length; i++) table[i] = i;
        for (int i = table.length - 1; i > 0; i--) {
            int j = r.nextInt(i + 1), t = table[i];
            table[i] = table[j];
            table[j] = t;
        }
        int[] lens = new int[batch], starts = new int[batch + 1], contiguousTable = new int[batch];
        for (int b = 0; b < batch; b++) {
            lens[b] = ctx;
            starts[b + 1] = b + 1;
            contiguousTable[b] = b;
        }
        Tensor contextLens = Tensor.of(lens, batch), queryStartLoc = Tensor.of(starts, batch + 1);
        Tensor pagedK = Tensor.of(toCache(k, batch, kvHeads, ctx, dim, blockSize, table), batch * perSeq, blockSize, kvHeads, dim);
        Tensor pagedV = Tensor.of(toCache(v, batch, kvHeads, ctx, dim, blockSize, table), batch * perSeq, blockSize, kvHeads, dim);
        Tensor pagedTable = Tensor.of(table, batch, perSeq);
        Tensor wholeK = Tensor.of(toCache(k, batch, kvHeads, ctx, dim, ctx, contiguousTable), batch, ctx, kvHeads, dim);
        Tensor wholeV = Tensor.of(toCache(v, batch, kvHeads, ctx, dim, ctx, contiguousTable), batch, ctx, kvHeads, dim);
        Tensor wholeTable = Tensor.of(contiguousTable, batch, 1);
        Tensor k4 = Tensor.of(k, batch, kvHeads, ctx, dim), v4 = Tensor.of(v, batch, kvHeads, ctx, dim);
        Tensor q4 = query.reshape(batch, heads, 1, dim);

        Timing.Stats paged = timing.measure(() -> sink = Serving.pagedAttention(query, pagedK, pagedV, pagedTable, contextLens, queryStartLoc));
        Timing.Stats contiguous = timing.measure(() -> sink = Serving.pagedAttention(query, wholeK, wholeV, wholeTable, contextLens, queryStartLoc));
        Timing.Stats flash = timing.measure(() -> sink = F.scaledDotProductAttention(q4, k4, v4, null, false, null, true));
        double kvBytes = 2.0 * k.length * Float.BYTES;
        return List.of(
                result(Id.PAGED, "paged_block16", paged, BenchResult.perSecondAtMedian(kvBytes, paged), null)
                        .with("overhead_vs_contiguous", paged.medianMs() / contiguous.medianMs() - 1),
                result(Id.PAGED, "contiguous_same_kernel", contiguous, BenchResult.perSecondAtMedian(kvBytes, contiguous), null),
                result(Id.PAGED, "flash_sdpa_contiguous", flash, BenchResult.perSecondAtMedian(kvBytes, flash), null));
    }

    /** Rows [B, Hkv, ctx, D] scattered into a cache [blocks, blockSize, Hkv, D]: token j of sequence b in block table[b][j / blockSize]. */
    private static float[] toCache(float[] rows, int batch, int kvHeads, int ctx, int dim, int blockSize, int[] table) {
        int perSeq = ctx / blockSize;
        float[] cache = new float[rows.length];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < kvHeads; h++) {
                for (int j = 0; j < ctx; j++) {
                    int src = ((b * kvHeads + h) * ctx + j) * dim;
                    int dst = ((table[b * perSeq + j / blockSize] * blockSize + j % blockSize) * kvHeads + h) * dim;
                    System.arraycopy(rows, src, cache, dst, dim);
                }
            }
        }
        return cache;
    }

    private static float[] randomFloats(java.util.Random r, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = r.nextFloat() * 2 - 1;
        return f;
    }

    // ---------------------------------------------------------------- W2

    /** {@code gelu(x @ W1 + b1) @ W2 + b2}, counting the two matmuls' flops. */
    private Prepared mlp(Mode mode, boolean firstCall) {
        int rows = sizes.mlpRows(), model = sizes.mlpModel(), hidden = sizes.mlpHidden();
        Tensor x = Tensor.randn(2, rows, model);
        Tensor w1 = Tensor.randn(3, model, hidden).mul(1 / Math.sqrt(model)), b1 = Tensor.randn(4, hidden).mul(0.1);
        Tensor w2 = Tensor.randn(5, hidden, model).mul(1 / Math.sqrt(hidden)), b2 = Tensor.randn(6, model).mul(0.1);
        Fn1<Tensor> mlp = in -> gelu(in.matmul(w1).add(b1)).matmul(w2).add(b2);
        long t0 = System.nanoTime();
        Fn1<Tensor> run = inMode(mode, mlp);
        if (firstCall) sink = run.apply(x);
        double firstMs = (System.nanoTime() - t0) / 1e6;
        double flops = 2.0 * rows * model * hidden * 2;
        return new Prepared(() -> sink = run.apply(x), firstCall ? firstMs : null,
                t -> result(Id.W2, "mlp", mode, t, null, BenchResult.perSecondAtMedian(flops, t)));
    }

    // ---------------------------------------------------------------- W4

    /** The LLaMA-style decoder block of {@code kiln demo} on {@code [1, seq, 512]}, compiled as a module in compiled mode. */
    private Prepared decoderBlock(Mode mode) {
        DecoderBlock.Config cfg = DecoderBlock.Config.w4();
        int seq = sizes.blockSeq();
        Tensor x = Tensor.randn(11, 1, seq, cfg.dModel()), positions = Tensor.arange(seq);
        DecoderBlock block = new DecoderBlock(cfg, 42);
        DecoderBlock run = mode == Mode.EAGER ? block : Kiln.compile(block, options(mode));
        return new Prepared(() -> sink = run.forward(x, positions), null, t -> result(Id.W4, "decoder_block", mode, t, null, null));
    }

    // ---------------------------------------------------------------- W5

    /** Sequences decoded together, the workload table's batch sizes. */
    private static final List<Integer> DECODE_BATCHES = List.of(1, 8);
    private static final int DECODE_BLOCK = 16;

    /**
     * Greedy decoding of the LLaMA-style model from a paged KV cache, batch 1 and 8: each run
     * rewinds every sequence to its prefilled prompt of {@code decodeContext} tokens and decodes
     * {@code decodeSteps} tokens per sequence (a step: the model, then argmax on the host); tokens/s
     * counts every sequence's tokens. The modes share one cache, prefilled eagerly once per batch.
     */
    private List<BenchResult> decodeThroughput() {
        DecoderModel.Config cfg = sizes.decodeModel();
        DecoderModel.Weights weights = DecoderModel.Weights.random(cfg, 17);
        int ctx = sizes.decodeContext(), steps = sizes.decodeSteps();
        int blocksPerSequence = (ctx + steps + DECODE_BLOCK - 1) / DECODE_BLOCK;
        List<BenchResult> out = new java.util.ArrayList<>();
        for (int batch : DECODE_BATCHES) {
            DecoderBlock.Config b = cfg.block();
            PagedKvCache cache = new PagedKvCache(cfg.layers(), batch * blocksPerSequence, DECODE_BLOCK, b.kvHeads(), b.headDim(),
                    blocksPerSequence);
            DecoderModel model = new DecoderModel(cfg, weights, cache);
            List<PagedKvCache.Sequence> seqs = new java.util.ArrayList<>();
            List<int[]> prompts = new java.util.ArrayList<>();
            java.util.Random r = new java.util.Random(23 + batch);
            for (int s = 0; s < batch; s++) {
                seqs.add(cache.newSequence());
                prompts.add(r.ints(ctx, 0, cfg.vocab()).toArray());
            }
            int[] first = model.step(cache.prepare(seqs, prompts)).argmax(1, false).toIntArray();
            List<Prepared> prepared = new java.util.ArrayList<>();
            for (Mode mode : modes) {
                DecoderModel run = mode == Mode.EAGER ? model : Kiln.compile(model, options(mode));
                prepared.add(new Prepared(() -> sink = decode(run, cache, seqs, ctx, first, steps), null,
                        t -> result(Id.W5, "decode_batch" + batch, mode, t, null, null)
                                .with("tokens_per_s", batch * steps / (t.medianMs() / 1000))));
            }
            out.addAll(sideBySide(prepared));
        }
        return out;
    }

    /** Rewinds {@code seqs} to {@code ctx} tokens and decodes {@code steps} greedy tokens each from {@code next}; the last tokens. */
    private static int[] decode(DecoderModel model, PagedKvCache cache, List<PagedKvCache.Sequence> seqs, int ctx, int[] next, int steps) {
        for (PagedKvCache.Sequence s : seqs) s.truncate(ctx);
        int[] tokens = next;
        for (int step = 0; step < steps; step++) {
            List<int[]> perSequence = new java.util.ArrayList<>();
            for (int token : tokens) perSequence.add(new int[] {token});
            tokens = model.step(cache.prepare(seqs, perSequence)).argmax(1, false).toIntArray();
        }
        return tokens;
    }
}
