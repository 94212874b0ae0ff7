package dev.kiln.npu.kernels.attention;

import dev.kiln.nn.Attention;
import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.kernels.ScalarTwin;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The FlashAttention kernel and its kernel-level options (mask with causal masking,
 * causal offset, softcap, partition size) against a naive double-precision reference
 * written here, across tilings forced by small SRAM budgets, and its DRAM traffic against
 * the tiling formula.
 */
class FlashAttentionProperties {

    enum MaskKind { NONE, BOOL, FLOAT, PADDING, PER_HEAD }

    /** Devices whose SRAM forces small query blocks and key tiles; one worker, so no automatic split-KV. */
    static final NpuDevice TINY = new NpuDevice(64 * 1024, 256, 1, 20e9);
    static final NpuDevice SMALL = new NpuDevice(160 * 1024, 256, 1, 20e9);

    /**
     * q [B, Hq, L, E], k [B, Hkv, S, E], v [B, Hkv, S, Ev]; mask [L, S] (BOOL, FLOAT),
     * [B, 1, 1, S] (PADDING, bool) or [B, Hq, L, S] (PER_HEAD, bool); masked keys and
     * values may hold NaN or infinity.
     */
    record Problem(int batch, int heads, int kvHeads, int queries, int keys, int headDim, int valueDim,
                   double[] q, double[] k, double[] v, MaskKind maskKind, double[] mask,
                   boolean causal, long offset, double scale, double softcap, int partitionSize) {

        int[] qShape() { return new int[] {batch, heads, queries, headDim}; }
        int[] kShape() { return new int[] {batch, kvHeads, keys, headDim}; }
        int[] vShape() { return new int[] {batch, kvHeads, keys, valueDim}; }
        int[] outShape() { return new int[] {batch, heads, queries, valueDim}; }

        int[] maskShape() {
            return switch (maskKind) {
                case PADDING -> new int[] {batch, 1, 1, keys};
                case PER_HEAD -> new int[] {batch, heads, queries, keys};
                default -> new int[] {queries, keys};
            };
        }

        Tensor[] inputs(DType dtype) {
            Tensor tq = TestTensors.tensor(q, dtype, qShape()), tk = TestTensors.tensor(k, dtype, kShape());
            Tensor tv = TestTensors.tensor(v, dtype, vShape());
            if (maskKind == MaskKind.NONE) return new Tensor[] {tq, tk, tv};
            DType maskType = maskKind == MaskKind.FLOAT ? dtype : DType.BOOL;
            return new Tensor[] {tq, tk, tv, TestTensors.tensor(mask, maskType, maskShape())};
        }

        AttentionSpec spec(int partition) {
            return new AttentionSpec(causal, offset, scale, softcap, kvHeads != heads, maskKind != MaskKind.NONE, partition);
        }

        Attention.Options options() {
            Attention.Options o = Attention.Options.DEFAULT.withScale(scale).withSoftcap(softcap).withPartitionSize(partitionSize);
            if (causal) o = o.withCausal(offset);
            return kvHeads != heads ? o.withGqa() : o;
        }

        /** Runs the kernel directly on {@code device} with {@code partition} keys per partition. */
        Tensor runOn(NpuDevice device, int partition, DType dtype) {
            Tensor out = Tensor.empty(dtype, Shape.of(outShape()));
            FlashAttention.run(spec(partition), inputs(dtype), out, device);
            return out;
        }

        /** Through the public API (and the op registry) on this machine's device. */
        Tensor runPublic(DType dtype) {
            Tensor[] in = inputs(dtype);
            return Attention.attention(in[0], in[1], in[2], in.length > 3 ? in[3] : null, options());
        }

        boolean maskAllows(int b, int h, int i, int j) {
            return switch (maskKind) {
                case NONE -> true;
                case BOOL -> mask[i * keys + j] != 0;
                case FLOAT -> mask[i * keys + j] != Double.NEGATIVE_INFINITY;
                case PADDING -> mask[b * keys + j] != 0;
                case PER_HEAD -> mask[((b * heads + h) * queries + i) * keys + j] != 0;
            };
        }

        boolean visible(int b, int h, int i, int j) {
            return (!causal || j <= i + offset) && maskAllows(b, h, i, j);
        }

        double score(int b, int h, int i, int j) {
            int kh = h / (heads / kvHeads);
            double dot = 0;
            for (int e = 0; e < headDim; e++) {
                dot += q[((b * heads + h) * queries + i) * headDim + e] * k[((b * kvHeads + kh) * keys + j) * headDim + e];
            }
            double s = dot * scale;
            if (softcap > 0) s = softcap * Math.tanh(s / softcap);
            if (maskKind == MaskKind.FLOAT) s += mask[i * keys + j];
            return s;
        }

        /** The naive reference in double, and the largest |score| it met (for the tolerance). */
        double[] reference(double[] maxAbsScore) {
            double[] out = new double[batch * heads * queries * valueDim];
            for (int b = 0; b < batch; b++) {
                for (int h = 0; h < heads; h++) {
                    int kh = h / (heads / kvHeads);
                    for (int i = 0; i < queries; i++) {
                        double[] s = new double[keys];
                        double max = Double.NEGATIVE_INFINITY;
                        for (int j = 0; j < keys; j++) {
                            if (!visible(b, h, i, j)) continue;
                            s[j] = score(b, h, i, j);
                            max = Math.max(max, s[j]);
                            maxAbsScore[0] = Math.max(maxAbsScore[0], Math.abs(s[j]));
                        }
                        if (max == Double.NEGATIVE_INFINITY) continue;
                        double sum = 0;
                        double[] row = new double[valueDim];
                        for (int j = 0; j < keys; j++) {
                            if (!visible(b, h, i, j)) continue;
                            double p = Math.exp(s[j] - max);
                            sum += p;
                            for (int c = 0; c < valueDim; c++) row[c] += p * v[((b * kvHeads + kh) * keys + j) * valueDim + c];
                        }
                        for (int c = 0; c < valueDim; c++) out[((b * heads + h) * queries + i) * valueDim + c] = row[c] / sum;
                    }
                }
            }
            return out;
        }

        /** Float32 tolerance: scores round to float, so the error grows with their size. */
        double tolerance(double maxAbsScore) { return 1e-4 + 2e-6 * maxAbsScore; }
    }

    enum Alignment { TOP_LEFT, BOTTOM_RIGHT, ANY }

    static Problem problem(long seed, int L, int S, int E, int Ev, int kvHeads, int group, MaskKind maskKind, boolean causal,
                           Alignment alignment, boolean softcap, int partitionSize, boolean largeLogits, boolean plant) {
        SplittableRandom r = new SplittableRandom(seed);
        int batch = 1 + r.nextInt(2), heads = kvHeads * group;
        double[] q = TestTensors.randomData((long) batch * heads * L * E, r.nextLong(), 1.5, false);
        double[] k = TestTensors.randomData((long) batch * kvHeads * S * E, r.nextLong(), 1.5, false);
        double[] v = TestTensors.randomData((long) batch * kvHeads * S * Ev, r.nextLong(), 2, false);
        if (largeLogits && E > 0) {
            // A shared direction makes every score large (hundreds), where an unstable softmax would overflow.
            for (int x = 0; x < q.length; x += E) q[x] = 40 + q[x];
            for (int x = 0; x < k.length; x += E) k[x] = 40 + 3 * k[x];
        }
        for (double[] a : new double[][] {q, k, v}) for (int x = 0; x < a.length; x++) a[x] = (float) a[x];
        double[] mask = switch (maskKind) {
            case NONE -> null;
            case BOOL -> bits(r, L * S);
            case PADDING -> bits(r, batch * S);
            case PER_HEAD -> bits(r, batch * heads * L * S);
            case FLOAT -> {
                double[] m = new double[L * S];
                for (int x = 0; x < m.length; x++) m[x] = r.nextInt(4) == 0 ? Double.NEGATIVE_INFINITY : (float) (r.nextDouble() * 4 - 2);
                yield m;
            }
        };
        long offset = switch (alignment) {
            case TOP_LEFT -> 0;
            case BOTTOM_RIGHT -> S - L;
            case ANY -> r.nextInt(2 * S + 5) - S - 2;
        };
        double scale = r.nextBoolean() ? 1 / Math.sqrt(Math.max(E, 1)) : (float) (r.nextDouble() * 1.2 - 0.3);
        double cap = softcap ? 1 + r.nextInt(30) : 0;
        Problem p = new Problem(batch, heads, kvHeads, L, S, E, Ev, q, k, v, maskKind, mask, causal, offset, scale, cap, partitionSize);
        if (plant) plantInvisible(p, r);
        return p;
    }

    static double[] bits(SplittableRandom r, int n) {
        double keep = new double[] {0.1, 0.5, 0.9}[r.nextInt(3)];
        double[] m = new double[n];
        for (int x = 0; x < n; x++) m[x] = r.nextDouble() < keep ? 1 : 0;
        return m;
    }

    /** NaN and infinities in every key and value no query sees: none may reach the output. */
    static void plantInvisible(Problem p, SplittableRandom r) {
        for (int b = 0; b < p.batch(); b++) {
            for (int kh = 0; kh < p.kvHeads(); kh++) {
                for (int j = 0; j < p.keys(); j++) {
                    boolean seen = false;
                    for (int h = kh * (p.heads() / p.kvHeads()); h < (kh + 1) * (p.heads() / p.kvHeads()) && !seen; h++) {
                        for (int i = 0; i < p.queries() && !seen; i++) seen = p.visible(b, h, i, j);
                    }
                    if (seen) continue;
                    int kBase = ((b * p.kvHeads() + kh) * p.keys() + j);
                    for (int e = 0; e < p.headDim(); e++) p.k()[kBase * p.headDim() + e] = nonFinite(r);
                    for (int c = 0; c < p.valueDim(); c++) p.v()[kBase * p.valueDim() + c] = nonFinite(r);
                }
            }
        }
    }

    static double nonFinite(SplittableRandom r) {
        return switch (r.nextInt(3)) {
            case 0 -> Double.NaN;
            case 1 -> Double.POSITIVE_INFINITY;
            default -> Double.NEGATIVE_INFINITY;
        };
    }

    static void assertMatches(String what, Problem p, Tensor out) {
        double[] maxAbs = {0};
        double[] expected = p.reference(maxAbs);
        double tol = p.tolerance(maxAbs[0]);
        TestTensors.assertClose(what + " " + describe(p), Shape.of(p.outShape()), expected, out, tol, tol);
    }

    static String describe(Problem p) {
        return "B" + p.batch() + " H" + p.heads() + "/" + p.kvHeads() + " L" + p.queries() + " S" + p.keys() + " E" + p.headDim()
                + " Ev" + p.valueDim() + " mask " + p.maskKind() + " causal " + p.causal() + " offset " + p.offset()
                + " softcap " + p.softcap() + " partition " + p.partitionSize();
    }

    // ------------------------------------------------------------------ properties

    @Provide
    Arbitrary<Integer> headSizes() { return Arbitraries.of(1, 3, 8, 15, 16, 17, 33, 40, 64, 80, 96, 112); }

    @Provide
    Arbitrary<Integer> groups() { return Arbitraries.of(1, 1, 4, 8); }

    @Provide
    Arbitrary<NpuDevice> devices() { return Arbitraries.of(TINY, SMALL, NpuDevice.current()); }

    @Property(tries = 120)
    void matchesTheReferenceOnEveryTiling(@ForAll @IntRange(min = 0, max = 90) int queries,
                                          @ForAll @IntRange(min = 0, max = 150) int keys,
                                          @ForAll("headSizes") int headDim, @ForAll("headSizes") int valueDim,
                                          @ForAll @IntRange(min = 1, max = 2) int kvHeads, @ForAll("groups") int group,
                                          @ForAll MaskKind maskKind, @ForAll boolean causal, @ForAll Alignment alignment,
                                          @ForAll boolean softcap, @ForAll @IntRange(min = 0, max = 60) int partition,
                                          @ForAll boolean largeLogits, @ForAll boolean plant,
                                          @ForAll("devices") NpuDevice device, @ForAll long seed) {
        Problem p = problem(seed, queries, keys, headDim, valueDim, kvHeads, group, maskKind, causal, alignment, softcap,
                partition, largeLogits, plant);
        assertMatches("flash on " + device.sramBytesPerCore() + " B SRAM", p, p.runOn(device, partition, DType.FLOAT32));
    }

    /** The scalar twin the kernel runs before the JIT has compiled it gives the vector code's bits (see {@code ScalarTwin}). */
    @Property(tries = 100)
    void scalarTwinGivesTheVectorBits(@ForAll @IntRange(min = 0, max = 90) int queries, @ForAll @IntRange(min = 0, max = 150) int keys,
                                      @ForAll("headSizes") int headDim, @ForAll("headSizes") int valueDim,
                                      @ForAll @IntRange(min = 1, max = 2) int kvHeads, @ForAll("groups") int group,
                                      @ForAll MaskKind maskKind, @ForAll boolean causal, @ForAll Alignment alignment,
                                      @ForAll @IntRange(min = 0, max = 60) int partition, @ForAll boolean largeLogits,
                                      @ForAll boolean plant, @ForAll("devices") NpuDevice device, @ForAll long seed) {
        Problem p = problem(seed, queries, keys, headDim, valueDim, kvHeads, group, maskKind, causal, alignment, false,
                partition, largeLogits, plant);
        Tensor[] out = new Tensor[2];
        ScalarTwin.forcing(false, () -> out[0] = p.runOn(device, partition, DType.FLOAT32));
        ScalarTwin.forcing(true, () -> out[1] = p.runOn(device, partition, DType.FLOAT32));
        float[] vector = out[0].toFloatArray(), scalar = out[1].toFloatArray();
        for (int x = 0; x < vector.length; x++) {
            int at = x;
            assertEquals(Float.floatToIntBits(vector[at]), Float.floatToIntBits(scalar[at]),
                    () -> "element " + at + ": vector " + vector[at] + ", scalar " + scalar[at] + " in " + describe(p));
        }
    }

    @Property(tries = 60)
    void publicApiMatchesTheReference(@ForAll @IntRange(min = 1, max = 70) int queries, @ForAll @IntRange(min = 1, max = 120) int keys,
                                      @ForAll("headSizes") int headDim, @ForAll("groups") int group, @ForAll MaskKind maskKind,
                                      @ForAll boolean causal, @ForAll Alignment alignment, @ForAll boolean softcap,
                                      @ForAll @IntRange(min = 0, max = 50) int partition, @ForAll long seed) {
        Problem p = problem(seed, queries, keys, headDim, headDim, 1, group, maskKind, causal, alignment, softcap, partition,
                false, true);
        assertMatches("Attention.attention", p, p.runPublic(DType.FLOAT32));
        // float64 takes the double kernel: same options, same semantics.
        double[] maxAbs = {0};
        TestTensors.assertClose("float64 " + describe(p), Shape.of(p.outShape()), p.reference(maxAbs), p.runPublic(DType.FLOAT64),
                1e-10, 1e-10);
    }

    @Property(tries = 60)
    void splitKvEqualsUnsplit(@ForAll @IntRange(min = 1, max = 40) int queries, @ForAll @IntRange(min = 2, max = 200) int keys,
                              @ForAll("headSizes") int headDim, @ForAll("groups") int group, @ForAll MaskKind maskKind,
                              @ForAll boolean causal, @ForAll Alignment alignment, @ForAll boolean softcap,
                              @ForAll @IntRange(min = 1, max = 199) int partition, @ForAll("devices") NpuDevice device,
                              @ForAll long seed) {
        Problem p = problem(seed, queries, keys, headDim, headDim, 1, group, maskKind, causal, alignment, softcap, 0,
                false, true);
        double[] whole = TestTensors.values(p.runOn(device, 0, DType.FLOAT32));
        double[] split = TestTensors.values(p.runOn(device, Math.min(partition, keys - 1), DType.FLOAT32));
        for (int x = 0; x < whole.length; x++) {
            assertEquals(whole[x], split[x], 2e-6 + 2e-6 * Math.abs(whole[x]), "element " + x + " of " + describe(p));
        }
    }

    /** Q and O move once, K and V once per query block up to the keys its last row sees; nothing else. */
    @Property(tries = 60)
    void dramTrafficMatchesTheTiling(@ForAll("trafficQueries") int queries, @ForAll @IntRange(min = 0, max = 300) int keys,
                                     @ForAll("headSizes") int headDim, @ForAll("headSizes") int valueDim, @ForAll boolean causal,
                                     @ForAll Alignment alignment, @ForAll("devices") NpuDevice device, @ForAll boolean half,
                                     @ForAll long seed) {
        DType dtype = half ? DType.FLOAT16 : DType.FLOAT32;
        Problem p = problem(seed, queries, keys, headDim, valueDim, 1, 2, MaskKind.NONE, causal, alignment, false, 0, false, false);
        NpuDevice oneWorker = new NpuDevice(device.sramBytesPerCore(), device.vectorBits(), 1, device.dmaBytesPerSecond());
        // One row under GQA: the two query heads of the KV head are the rows of one slice.
        boolean packed = queries == 1;
        int slices = p.batch() * (packed ? p.kvHeads() : p.heads()), rows = packed ? p.heads() / p.kvHeads() : queries;
        FlashAttention.Tiling t = FlashAttention.Tiling.plan(oneWorker, slices, rows, keys, headDim, valueDim, 0);
        assertEquals(1, t.partitions());
        long size = dtype.byteSize();
        long expected = (long) p.batch() * p.heads() * queries * (headDim + valueDim) * size;
        for (int block = 0; block < t.queryBlocks(); block++) {
            int lastRow = packed ? 0 : Math.min(queries, (block + 1) * t.queryBlock()) - 1;
            long seen = causal ? Math.clamp(lastRow + p.offset() + 1, 0, keys) : keys;
            expected += slices * seen * (headDim + valueDim) * size;
        }
        Tensor out = Tensor.empty(dtype, Shape.of(p.outShape()));
        LaunchTraffic traffic = FlashAttention.run(p.spec(0), p.inputs(dtype), out, oneWorker);
        assertEquals(expected, traffic.bytes(), describe(p) + " tiling " + t);
        assertEquals((long) p.batch() * p.heads() * queries * valueDim * size, traffic.bytesWritten(), "only the output is written");
    }

    /** One query row under GQA packs the query heads of a KV head into one slice's rows. */
    @Property(tries = 80)
    void decodeUnderGqaMatchesTheReference(@ForAll @IntRange(min = 0, max = 300) int keys, @ForAll("headSizes") int headDim,
                                           @ForAll @IntRange(min = 1, max = 3) int kvHeads, @ForAll("decodeGroups") int group,
                                           @ForAll MaskKind maskKind, @ForAll boolean causal, @ForAll Alignment alignment,
                                           @ForAll boolean softcap, @ForAll @IntRange(min = 0, max = 100) int partition,
                                           @ForAll boolean plant, @ForAll("devices") NpuDevice device, @ForAll long seed) {
        Problem p = problem(seed, 1, keys, headDim, headDim, kvHeads, group, maskKind, causal, alignment, softcap, partition,
                false, plant);
        assertMatches("decode on " + device.sramBytesPerCore() + " B SRAM", p, p.runOn(device, partition, DType.FLOAT32));
    }

    /**
     * Units of a few rows with head sizes of whole vectors put head elements in lanes and read
     * float32 keys and values of unit column stride where they lie, at any row stride: every
     * presentation gives the reference, and the same bits as contiguous operands.
     */
    @Property(tries = 60)
    void fewRowsMatchTheReferenceInEveryPresentation(@ForAll @IntRange(min = 1, max = 8) int queries,
                                                     @ForAll @IntRange(min = 1, max = 400) int keys, @ForAll("wholeVectorHeads") int headDim,
                                                     @ForAll("wholeVectorHeads") int valueDim, @ForAll("groups") int group,
                                                     @ForAll MaskKind maskKind, @ForAll boolean causal, @ForAll Alignment alignment,
                                                     @ForAll boolean softcap, @ForAll boolean plant, @ForAll TestTensors.Presentation presentation,
                                                     @ForAll boolean headsInterleaved, @ForAll long seed) {
        Problem p = problem(seed, queries, keys, headDim, valueDim, 1 + (int) (seed & 1), group, maskKind, causal, alignment, softcap,
                0, false, plant);
        Tensor[] contiguous = p.inputs(DType.FLOAT32);
        Tensor[] presented = contiguous.clone();
        presented[1] = headsInterleaved ? interleaved(p.k(), p.kShape()) : TestTensors.tensor(p.k(), DType.FLOAT32, presentation, p.kShape());
        presented[2] = headsInterleaved ? interleaved(p.v(), p.vShape()) : TestTensors.tensor(p.v(), DType.FLOAT32, presentation, p.vShape());
        Tensor expected = Tensor.empty(DType.FLOAT32, Shape.of(p.outShape())), got = Tensor.empty(DType.FLOAT32, Shape.of(p.outShape()));
        FlashAttention.run(p.spec(0), contiguous, expected, NpuDevice.current());
        FlashAttention.run(p.spec(0), presented, got, NpuDevice.current());
        String how = headsInterleaved ? "a [B, S, H, E] cache transposed" : presentation.toString();
        assertMatches("few rows, " + how, p, got);
        assertArrayEquals(expected.toFloatArray(), got.toFloatArray(), how + " " + describe(p));
    }

    /** {@code [B, H, S, E]} values stored as a {@code [B, S, H, E]} cache, viewed back as {@code [B, H, S, E]}: rows of unit stride, apart by H E. */
    static Tensor interleaved(double[] values, int[] shape) {
        int b = shape[0], h = shape[1], n = shape[2], e = shape[3];
        double[] cache = new double[values.length];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < h; j++) {
                for (int t = 0; t < n; t++) System.arraycopy(values, ((i * h + j) * n + t) * e, cache, ((i * n + t) * h + j) * e, e);
            }
        }
        return TestTensors.tensor(cache, DType.FLOAT32, b, n, h, e).transpose(1, 2);
    }

    @Provide
    Arbitrary<Integer> wholeVectorHeads() { return Arbitraries.of(16, 32, 64, 128); }

    @Provide
    Arbitrary<Integer> decodeGroups() { return Arbitraries.of(2, 4, 8, 16, 32); }

    @Provide
    Arbitrary<Integer> trafficQueries() { return Arbitraries.frequencyOf(Tuple.of(1, Arbitraries.just(1)), Tuple.of(3, Arbitraries.integers().between(2, 200))); }

    // ------------------------------------------------------------------ examples

    @Test
    void decodeReadsEachKvHeadOnce() {
        // 2 batches x 2 KV heads x 4 query heads each, one row, 300 keys: K and V move once per KV head.
        Problem p = problem(9, 1, 300, 64, 64, 2, 4, MaskKind.NONE, true, Alignment.BOTTOM_RIGHT, false, 0, false, false);
        NpuDevice oneWorker = new NpuDevice(1 << 20, 256, 1, 20e9);
        LaunchTraffic t = FlashAttention.run(p.spec(0), p.inputs(DType.FLOAT32), Tensor.empty(DType.FLOAT32, Shape.of(p.outShape())), oneWorker);
        long q = (long) p.batch() * 8 * 64 * 4, kv = (long) p.batch() * 2 * 300 * 64 * 4;
        assertEquals(2 * q + 2 * kv, t.bytes());
    }

    @Test
    void tilingFollowsTheSram() {
        FlashAttention.Tiling tiny = FlashAttention.Tiling.plan(TINY, 8, 1024, 1024, 64, 64, 0);
        NpuDevice mib = new NpuDevice(1 << 20, 256, 1, 20e9);
        FlashAttention.Tiling big = FlashAttention.Tiling.plan(mib, 8, 1024, 1024, 64, 64, 0);
        assertTrue(tiny.queryBlock() < big.queryBlock() && tiny.keyTile() < big.keyTile(), tiny + " vs " + big);
        // A worker's working set (transposed queries and accumulators, key and value tiles, scores) fits the SRAM.
        for (NpuDevice d : new NpuDevice[] {TINY, SMALL, mib}) {
            for (int[] dims : new int[][] {{64, 64}, {40, 112}, {128, 128}, {8, 8}}) {
                FlashAttention.Tiling t = FlashAttention.Tiling.plan(d, 8, 1024, 1024, dims[0], dims[1], 0);
                long bytes = t.workspaceFloats(dims[0], dims[1]) * 4;
                assertTrue(bytes <= d.sramBytesPerCore(), t + " needs " + bytes + " bytes of " + d.sramBytesPerCore());
                if (d == TINY) assertTrue(bytes > d.sramBytesPerCore() / 2, t + " uses only " + bytes + " bytes of " + d.sramBytesPerCore());
            }
        }
        FlashAttention.Tiling split = FlashAttention.Tiling.plan(mib, 8, 1024, 1024, 64, 64, 300);
        assertEquals(4, split.partitions());
        assertEquals(300, split.partitionKeys());
        // One decode row of one head on two workers: the keys split so that both work.
        FlashAttention.Tiling decode = FlashAttention.Tiling.plan(new NpuDevice(64 * 1024, 256, 2, 20e9), 1, 1, 4096, 64, 64, 0);
        assertEquals(2, decode.partitions());
    }

    @Test
    void maskAndCausalTogetherAndBottomRightAlignment() {
        // 2 queries continuing a 3-key prefix: offset S - L = 3; key 4 is masked out for row 0 by the causal rule.
        Tensor q = TestTensors.tensor(new double[] {0, 0, 0, 0}, DType.FLOAT32, 2, 2);
        Tensor k = TestTensors.tensor(new double[10], DType.FLOAT32, 5, 2);
        Tensor v = TestTensors.tensor(new double[] {1, 2, 3, 4, 5}, DType.FLOAT32, 5, 1);
        Tensor mask = TestTensors.tensor(new double[] {0, 1, 1, 1, 1, 0, 1, 1, 1, 1}, DType.BOOL, 2, 5);
        Tensor out = Attention.attention(q, k, v, mask, Attention.Options.DEFAULT.withCausal(3));
        // Row 0 sees keys 1..3 (mean 3), row 1 keys 1..4 (mean 3.5).
        assertArrayEquals(new double[] {3, 3.5}, TestTensors.values(out), 1e-6);
        Tensor topLeft = Attention.attention(q, k, v, Attention.Options.DEFAULT.withCausal());
        assertArrayEquals(new double[] {1, 1.5}, TestTensors.values(topLeft), 1e-6);
    }

    @Test
    void extremeCausalOffsetsSeeAllOrNothing() {
        Tensor q = TestTensors.tensor(new double[] {1, 0, 0, 1}, DType.FLOAT32, 2, 2);
        Tensor k = TestTensors.tensor(new double[] {0, 0, 0, 0, 0, 0}, DType.FLOAT32, 3, 2);
        Tensor v = TestTensors.tensor(new double[] {1, 2, 6}, DType.FLOAT32, 3, 1);
        for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
            Tensor qt = q.to(t), kt = k.to(t), vt = v.to(t);
            assertArrayEquals(new double[] {3, 3}, TestTensors.values(Attention.attention(qt, kt, vt,
                    Attention.Options.DEFAULT.withCausal(Long.MAX_VALUE))), 1e-6, t.toString());
            assertArrayEquals(new double[] {0, 0}, TestTensors.values(Attention.attention(qt, kt, vt,
                    Attention.Options.DEFAULT.withCausal(Long.MIN_VALUE))), t.toString());
        }
    }

    @Test
    void softcapBoundsScoresBeforeTheMask() {
        // Scores 100 and 0 capped at 2: weights e^(2 tanh(50)) and e^0, not a one-hot.
        Tensor q = TestTensors.tensor(new double[] {10}, DType.FLOAT32, 1, 1);
        Tensor k = TestTensors.tensor(new double[] {10, 0}, DType.FLOAT32, 2, 1);
        Tensor v = TestTensors.tensor(new double[] {1, 0}, DType.FLOAT32, 2, 1);
        Tensor bias = TestTensors.tensor(new double[] {0, 1}, DType.FLOAT32, 1, 2);
        Tensor out = Attention.attention(q, k, v, bias, Attention.Options.DEFAULT.withScale(1).withSoftcap(2));
        double a = Math.exp(2 * Math.tanh(50)), b = Math.exp(1);
        assertEquals(a / (a + b), TestTensors.values(out)[0], 1e-6);
    }

    @Test
    void fullyMaskedRowsAreZeroAndNothingMaskedLeaks() {
        double nan = Double.NaN, inf = Double.POSITIVE_INFINITY;
        Tensor q = TestTensors.tensor(new double[] {1, 1, 1, 1, 1, 1}, DType.FLOAT32, 3, 2);
        Tensor k = TestTensors.tensor(new double[] {nan, inf, 1, 1, -inf, nan}, DType.FLOAT32, 3, 2);
        Tensor v = TestTensors.tensor(new double[] {nan, 5, inf}, DType.FLOAT32, 3, 1);
        // Row 0 sees nothing (offset -1), row 1 sees key 1 only through the mask, row 2 keys 1 and (masked) 2.
        Tensor mask = TestTensors.tensor(new double[] {1, 1, 1, 0, 1, 0, 0, 1, 0}, DType.BOOL, 3, 3);
        for (int partition : new int[] {0, 1, 2}) {
            Tensor out = Attention.attention(q, k, v, mask, Attention.Options.DEFAULT.withCausal(-1).withPartitionSize(partition));
            assertArrayEquals(new double[] {0, 0, 5}, TestTensors.values(out), "partition " + partition);
        }
    }

    @Test
    void sdpaStillRejectsMaskWithCausalButTheKernelApiTakesBoth() {
        Tensor q = TestTensors.tensor(new double[4], DType.FLOAT32, 2, 2);
        Tensor mask = TestTensors.tensor(new double[] {1, 1, 1, 1}, DType.BOOL, 2, 2);
        assertThrows(KilnShapeException.class, () -> dev.kiln.nn.F.scaledDotProductAttention(q, q, q, mask, true, null, false));
        assertEquals(4, Attention.attention(q, q, q, mask, Attention.Options.DEFAULT.withCausal()).numel());
    }

    @Test
    void badOptionsAreRejectedWithTheirValue() {
        KilnShapeException cap = assertThrows(KilnShapeException.class, () -> Attention.Options.DEFAULT.withSoftcap(-1));
        assertEquals("attention: softcap must be finite and >= 0 (0 for none), got -1.0", cap.getMessage());
        KilnShapeException part = assertThrows(KilnShapeException.class, () -> Attention.Options.DEFAULT.withPartitionSize(-3));
        assertEquals("attention: partition size must be >= 0 (0 lets the device choose), got -3", part.getMessage());
        Tensor q = TestTensors.tensor(new double[4], DType.FLOAT32, 2, 2);
        KilnShapeException op = assertThrows(KilnShapeException.class,
                () -> dev.kiln.ops.Dispatch.apply1(new Op.Attention(false, 0, 1, Double.NaN, false, false, 0, false), q, q, q));
        assertEquals("attention: softcap must be finite and >= 0 (0 for none), got NaN", op.getMessage());
        Tensor k = TestTensors.tensor(new double[6], DType.FLOAT32, 2, 3);
        KilnShapeException shape = assertThrows(KilnShapeException.class,
                () -> Attention.attention(q, k, k, Attention.Options.DEFAULT));
        assertEquals("attention: query shape [2,2] and key shape [2,3] differ in dimension -1 (2 vs 3)", shape.getMessage());
    }

    @Test
    void theScoreMatrixNeverReachesDram() {
        Problem p = problem(5, 1024, 1024, 64, 64, 1, 1, MaskKind.NONE, true, Alignment.TOP_LEFT, false, 0, false, false);
        long before = Dma.totalBytes();
        Tensor out = p.runOn(NpuDevice.current(), 0, DType.FLOAT32);
        long moved = Dma.totalBytes() - before;
        long scores = (long) p.batch() * p.heads() * 1024 * 1024 * 4;
        assertTrue(moved < scores / 2, moved + " bytes moved, scores alone are " + scores);
        assertMatches("1024x1024", p, out);
    }
}
