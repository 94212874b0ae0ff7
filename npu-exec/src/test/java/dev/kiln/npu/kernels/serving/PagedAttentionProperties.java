package dev.kiln.npu.kernels.serving;

import dev.kiln.nn.Serving;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

import java.util.Arrays;
import java.util.Random;

import static dev.kiln.testing.TestTensors.assertClose;
import static dev.kiln.testing.TestTensors.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PagedAttentionProperties {

    @Provide
    Arbitrary<Integer> headSizes() { return Arbitraries.of(1, 3, 5, 8, 16, 40, 64, 80, 96, 112); }

    /** GQA ratio 1, 4, 8 over one or two KV heads (one KV head is MQA). */
    @Provide
    Arbitrary<int[]> heads() {
        return Arbitraries.of(new int[] {1, 1}, new int[] {2, 2}, new int[] {4, 1}, new int[] {8, 2}, new int[] {8, 1},
                new int[] {3, 3});
    }

    @Provide
    Arbitrary<DType> dtypes() { return Arbitraries.of(DType.FLOAT32, DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16); }

    static double rtol(DType t) { return t == DType.FLOAT32 ? 1e-4 : t == DType.FLOAT16 ? 2e-3 : 1e-2; }

    static double atol(DType t) { return t == DType.FLOAT32 ? 2e-5 : t == DType.FLOAT16 ? 1e-3 : 1e-2; }

    /** The batch's tensors in one dtype and presentation, and the values they actually hold. */
    record Inputs(Tensor query, Tensor keyCache, Tensor valueCache, Tensor blockTables, Tensor contextLens, Tensor queryStartLoc) {
        static Inputs of(PagedBatch b, DType dtype, Presentation p) {
            return new Inputs(
                    TestTensors.tensor(b.query(), dtype, p, b.tokens(), b.heads(), b.dim()),
                    TestTensors.tensor(b.keyCache(), dtype, p, b.blocks(), b.blockSize(), b.kvHeads(), b.dim()),
                    TestTensors.tensor(b.valueCache(), dtype, p, b.blocks(), b.blockSize(), b.kvHeads(), b.dim()),
                    Tensor.of(b.blockTables(), b.sequences(), b.maxBlocks()),
                    Tensor.of(b.contextLens(), b.sequences()),
                    Tensor.of(b.queryStartLoc(), b.sequences() + 1));
        }

        Tensor run(double scale, boolean causal, int window, double softcap) {
            return Serving.pagedAttention(query, keyCache, valueCache, blockTables, contextLens, queryStartLoc, scale, causal,
                    window, softcap);
        }

        double[] reference(PagedBatch b, double scale, boolean causal, int window, double softcap) {
            return b.reference(values(query), values(keyCache), values(valueCache), scale, causal, window, softcap);
        }
    }

    @Property(tries = 80)
    void matchesTheReferenceOnMixedBatches(@ForAll long seed, @ForAll("headSizes") int dim, @ForAll("heads") int[] heads,
                                           @ForAll @IntRange(min = 1, max = 17) int blockSize, @ForAll("dtypes") DType dtype,
                                           @ForAll Presentation presentation, @ForAll boolean causal,
                                           @ForAll @IntRange(min = 0, max = 12) int window, @ForAll boolean softcapped) {
        Random r = new Random(seed);
        PagedBatch b = PagedBatch.random(r, 1 + r.nextInt(4), heads[0], heads[1], dim, blockSize, 40, 1.5);
        Inputs in = Inputs.of(b, dtype, presentation);
        double scale = r.nextBoolean() ? 1 / Math.sqrt(dim) : 0.5 + r.nextDouble();
        double softcap = softcapped ? 2 + 10 * r.nextDouble() : 0;
        Tensor out = in.run(scale, causal, window, softcap);
        assertTrue(out.dtype() == dtype);
        assertClose("pagedAttention", in.query().shape(), in.reference(b, scale, causal, window, softcap), out,
                rtol(dtype), atol(dtype));
    }

    @Provide
    Arbitrary<Integer> longContextHeadSizes() { return Arbitraries.of(8, 40, 64, 128); }

    /** Contexts past a partition: a row's keys are split into units and merged by their log-sum-exps. */
    @Property(tries = 12)
    void longContextsSplitIntoPartitionsMatchTheReference(@ForAll long seed, @ForAll("longContextHeadSizes") int dim,
                                                          @ForAll("heads") int[] heads, @ForAll @IntRange(min = 1, max = 17) int blockSize,
                                                          @ForAll("dtypes") DType dtype, @ForAll Presentation presentation,
                                                          @ForAll boolean causal, @ForAll @IntRange(min = 0, max = 1200) int window,
                                                          @ForAll boolean softcapped) {
        Random r = new Random(seed);
        int partition = PagedAttentionKernel.PARTITION;
        PagedBatch b = PagedBatch.longContexts(r, 1 + r.nextInt(3), heads[0], heads[1], dim, blockSize, partition + 1, 3 * partition, 3);
        Inputs in = Inputs.of(b, dtype, presentation);
        double scale = 1 / Math.sqrt(dim), softcap = softcapped ? 2 + 10 * r.nextDouble() : 0;
        assertClose("pagedAttention, long contexts", in.query().shape(), in.reference(b, scale, causal, window, softcap),
                in.run(scale, causal, window, softcap), rtol(dtype), atol(dtype));
    }

    /** The scalar twin the kernel runs before the JIT has compiled it gives the vector code's bits (see {@code ScalarTwin}). */
    @Property(tries = 30)
    void scalarTwinGivesTheVectorBits(@ForAll long seed, @ForAll("headSizes") int dim, @ForAll("heads") int[] heads,
                                      @ForAll @IntRange(min = 1, max = 17) int blockSize, @ForAll("dtypes") DType dtype,
                                      @ForAll boolean causal, @ForAll @IntRange(min = 0, max = 12) int window, @ForAll boolean softcapped,
                                      @ForAll boolean longContexts) {
        Random r = new Random(seed);
        PagedBatch b = longContexts
                ? PagedBatch.longContexts(r, 2, heads[0], heads[1], dim, blockSize, 1, 2 * PagedAttentionKernel.PARTITION, 2)
                : PagedBatch.random(r, 1 + r.nextInt(4), heads[0], heads[1], dim, blockSize, 40, 1.5);
        Inputs in = Inputs.of(b, dtype, Presentation.CONTIGUOUS);
        double softcap = softcapped ? 5 : 0;
        Tensor[] out = new Tensor[2];
        dev.kiln.npu.kernels.ScalarTwin.forcing(false, () -> out[0] = in.run(0.3, causal, window, softcap));
        dev.kiln.npu.kernels.ScalarTwin.forcing(true, () -> out[1] = in.run(0.3, causal, window, softcap));
        assertArrayEquals(values(out[0]), values(out[1]));
    }

    /** Past {@code MAX_PARTITIONS} partitions a row's partitions grow instead of multiplying. */
    @Example
    void aVeryLongContextHasBoundedPartitions() {
        int keys = PagedAttentionKernel.MAX_PARTITIONS * PagedAttentionKernel.PARTITION + 7000;
        assertTrue(new PagedAttentionKernel.Rows(new int[] {0}, new int[] {0}, new int[] {keys - 1}).partitions(0)
                == PagedAttentionKernel.MAX_PARTITIONS);
        PagedBatch b = PagedBatch.longContexts(new Random(5), 1, 2, 1, 16, 16, keys, keys, 2);
        Inputs in = Inputs.of(b, DType.FLOAT32, Presentation.CONTIGUOUS);
        assertClose("pagedAttention over " + keys + " keys", in.query().shape(), in.reference(b, 0.25, true, 0, 0),
                in.run(0.25, true, 0, 0), 1e-4, 2e-5);
    }

    /** A row's partitions depend on its own keys only: a sequence alone and in a batch give the same bits. */
    @Property(tries = 8)
    void aSequenceGivesTheSameBitsAloneAsInABatch(@ForAll long seed, @ForAll boolean causal) {
        Random r = new Random(seed);
        PagedBatch b = PagedBatch.longContexts(r, 3, 8, 2, 64, 16, 1, 3 * PagedAttentionKernel.PARTITION, 2);
        Inputs in = Inputs.of(b, DType.FLOAT32, Presentation.CONTIGUOUS);
        Tensor batch = in.run(0.125, causal, 0, 0);
        int[] start = b.queryStartLoc();
        for (int s = 0; s < b.sequences(); s++) {
            Tensor alone = Serving.pagedAttention(in.query().slice(0, start[s], start[s + 1]), in.keyCache(), in.valueCache(),
                    in.blockTables().slice(0, s, s + 1), in.contextLens().slice(0, s, s + 1),
                    Tensor.of(new int[] {0, start[s + 1] - start[s]}, 2), 0.125, causal, 0, 0);
            assertArrayEquals(values(batch.slice(0, start[s], start[s + 1])), values(alone), "sequence " + s);
        }
    }

    /** Split rows taken a wave at a time (here one row per wave) give the same bits as all at once. */
    @Property(tries = 6)
    void wavesOfSplitRowsChangeNoBits(@ForAll long seed) {
        Random r = new Random(seed);
        PagedBatch b = PagedBatch.longContexts(r, 3, 4, 2, 40, 16, 1, 3 * PagedAttentionKernel.PARTITION, 3);
        Inputs in = Inputs.of(b, DType.FLOAT32, Presentation.CONTIGUOUS);
        int tokens = b.tokens();
        int[] sequence = new int[tokens], first = new int[tokens], last = new int[tokens];
        for (int s = 0; s < b.sequences(); s++) {
            for (int t = b.queryStartLoc()[s]; t < b.queryStartLoc()[s + 1]; t++) {
                sequence[t] = s;
                last[t] = b.contextLens()[s] - 1;
            }
        }
        PagedAttentionKernel.Rows rows = new PagedAttentionKernel.Rows(sequence, first, last);
        PagedAttentionKernel.BlockTable table = (s, logical) -> b.blockTables()[s * b.maxBlocks() + logical];
        var params = new dev.kiln.ops.ServingKernels.AttentionParams(0.2, false, 0, 0);
        Tensor together = Tensor.zeros(tokens, b.heads(), b.dim()), oneByOne = Tensor.zeros(tokens, b.heads(), b.dim());
        PagedAttentionKernel.run(in.query(), in.keyCache(), in.valueCache(), table, rows, params, together);
        PagedAttentionKernel.run(in.query(), in.keyCache(), in.valueCache(), table, rows, params, oneByOne, 1);
        assertArrayEquals(values(together), values(oneByOne));
        assertClose("waves", together.shape(), in.reference(b, 0.2, false, 0, 0), together, 1e-4, 2e-5);
    }

    @Property(tries = 30)
    void defaultsAreCausalWithScaleOneOverRootDAndUnreferencedNaNNeverLeaks(@ForAll long seed, @ForAll("headSizes") int dim) {
        Random r = new Random(seed);
        PagedBatch b = PagedBatch.random(r, 3, 4, 2, dim, 5, 30, 1);
        Inputs in = Inputs.of(b, DType.FLOAT32, Presentation.CONTIGUOUS);
        Tensor out = Serving.pagedAttention(in.query(), in.keyCache(), in.valueCache(), in.blockTables(), in.contextLens(),
                in.queryStartLoc());
        double[] got = values(out);
        for (double v : got) assertTrue(Double.isFinite(v), "NaN from an unreferenced slot reached the output");
        assertClose("pagedAttention defaults", in.query().shape(), in.reference(b, 1 / Math.sqrt(dim), true, 0, 0), out, 1e-4, 2e-5);
    }

    @Example
    void rowsBeforeTheContextStartSeeNoKeyAndGiveZeros() {
        // One sequence of 2 cached tokens and 4 query rows: rows 0 and 1 sit at positions -2 and -1.
        Random r = new Random(7);
        double[] q = new double[4 * 2 * 3], k = new double[4 * 1 * 3], v = new double[k.length];
        for (int i = 0; i < q.length; i++) q[i] = r.nextDouble();
        for (int i = 0; i < k.length; i++) { k[i] = r.nextDouble(); v[i] = r.nextDouble(); }
        Tensor out = Serving.pagedAttention(Tensor.of(q, 4, 2, 3), Tensor.of(k, 1, 4, 1, 3), Tensor.of(v, 1, 4, 1, 3),
                Tensor.of(new int[] {0}, 1, 1), Tensor.of(new int[] {2}, 1), Tensor.of(new int[] {0, 4}, 2));
        double[] got = values(out);
        for (int i = 0; i < 12; i++) assertTrue(got[i] == 0, "row " + i / 6 + " should be zeros");
        double[] ref = PagedReference.attention(q, 2, 3, k, v, 4, 1, new int[] {0}, 1, new int[] {2}, new int[] {0, 4},
                1 / Math.sqrt(3), true, 0, 0);
        assertClose("visible rows", out.shape(), ref, out, 1e-5, 1e-6);
    }

    @Property(tries = 20)
    void veryLargeLogitsStayFiniteAndPickTheDominantKey(@ForAll long seed, @ForAll("headSizes") int dim, @ForAll boolean softcapped) {
        Random r = new Random(seed);
        int ctx = 1 + r.nextInt(30), blockSize = 4, blocks = (ctx + blockSize - 1) / blockSize;
        double[] u = new double[dim];
        for (int d = 0; d < dim; d++) u[d] = r.nextBoolean() ? 1 : -1;
        double[] q = new double[dim], k = new double[blocks * blockSize * dim], v = new double[k.length];
        Arrays.fill(k, Double.NaN);
        Arrays.fill(v, Double.NaN);
        for (int d = 0; d < dim; d++) q[d] = 1000 * u[d];
        int[] table = new int[blocks];
        for (int b = 0; b < blocks; b++) table[b] = blocks - 1 - b;
        for (int j = 0; j < ctx; j++) {
            int at = (table[j / blockSize] * blockSize + j % blockSize) * dim;
            // Scores grow by about 1e4 per key and reach far beyond exp's range.
            for (int d = 0; d < dim; d++) { k[at + d] = (j + 1) * 10 * u[d]; v[at + d] = r.nextDouble(); }
        }
        double softcap = softcapped ? 30 : 0;
        Tensor out = Serving.pagedAttention(Tensor.of(q, 1, 1, dim), Tensor.of(k, blocks, blockSize, 1, dim),
                Tensor.of(v, blocks, blockSize, 1, dim), Tensor.of(table, 1, blocks), Tensor.of(new int[] {ctx}, 1),
                Tensor.of(new int[] {0, 1}, 2), 1, true, 0, softcap);
        double[] ref = PagedReference.attention(q, 1, dim, k, v, blockSize, 1, table, blocks, new int[] {ctx}, new int[] {0, 1},
                1, true, 0, softcap);
        for (double x : values(out)) assertTrue(Double.isFinite(x));
        assertClose("large logits", out.shape(), ref, out, 1e-4, 1e-5);
    }

    @Property(tries = 30)
    void aChunkAfterACachedPrefixEqualsTheFullRecompute(@ForAll long seed, @ForAll("headSizes") int dim, @ForAll("heads") int[] heads,
                                                        @ForAll @IntRange(min = 1, max = 9) int blockSize,
                                                        @ForAll @IntRange(min = 0, max = 6) int window) {
        Random r = new Random(seed);
        int h = heads[0], hkv = heads[1], ctx = 2 + r.nextInt(30), prefix = 1 + r.nextInt(ctx - 1), chunk = ctx - prefix;
        int used = (ctx + blockSize - 1) / blockSize, blocks = used + 2;
        int[] table = distinctBlocks(used, blocks, r);
        double[] q = random(r, ctx * h * dim), k = random(r, ctx * hkv * dim), v = random(r, ctx * hkv * dim);
        Tensor keyCache = Tensor.full(Double.NaN, blocks, blockSize, hkv, dim), valueCache = Tensor.full(Double.NaN, blocks, blockSize, hkv, dim);
        long[] slots = new long[ctx];
        for (int j = 0; j < ctx; j++) slots[j] = (long) table[j / blockSize] * blockSize + j % blockSize;
        Tensor allKeys = Tensor.of(k, ctx, hkv, dim), allValues = Tensor.of(v, ctx, hkv, dim), allSlots = Tensor.of(slots, ctx);
        // The prefix is cached by one call, the chunk's own keys by another, as a server would.
        Serving.reshapeAndCache(allKeys.slice(0, 0, prefix), allValues.slice(0, 0, prefix), keyCache, valueCache, allSlots.slice(0, 0, prefix));
        Serving.reshapeAndCache(allKeys.slice(0, prefix, ctx), allValues.slice(0, prefix, ctx), keyCache, valueCache, allSlots.slice(0, prefix, ctx));
        Tensor tables = Tensor.of(table, 1, used), lens = Tensor.of(new int[] {ctx}, 1);
        Tensor query = Tensor.of(q, ctx, h, dim);
        double scale = 1 / Math.sqrt(dim);
        Tensor full = Serving.pagedAttention(query, keyCache, valueCache, tables, lens, Tensor.of(new int[] {0, ctx}, 2), scale, true, window, 0);
        Tensor chunked = Serving.pagedAttention(query.slice(0, prefix, ctx), keyCache, valueCache, tables, lens,
                Tensor.of(new int[] {0, chunk}, 2), scale, true, window, 0);
        assertArrayEquals(values(full.slice(0, prefix, ctx)), values(chunked));
        double[] ref = PagedReference.attention(q, h, dim, denseCache(k, table, blocks, blockSize, hkv, dim),
                denseCache(v, table, blocks, blockSize, hkv, dim), blockSize, hkv, table, used, new int[] {ctx}, new int[] {0, ctx},
                scale, true, window, 0);
        assertClose("full prefill", full.shape(), ref, full, 1e-4, 2e-5);
    }

    static int[] distinctBlocks(int used, int blocks, Random r) {
        java.util.List<Integer> all = new java.util.ArrayList<>();
        for (int b = 0; b < blocks; b++) all.add(b);
        java.util.Collections.shuffle(all, r);
        int[] out = new int[used];
        for (int b = 0; b < used; b++) out[b] = all.get(b);
        return out;
    }

    static double[] random(Random r, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = r.nextDouble() * 2 - 1;
        return d;
    }

    /** Token rows [ctx, Hkv, D] laid into a [blocks, BS, Hkv, D] array through the table; other slots NaN. */
    static double[] denseCache(double[] rows, int[] table, int blocks, int blockSize, int kvHeads, int dim) {
        double[] c = new double[blocks * blockSize * kvHeads * dim];
        Arrays.fill(c, Double.NaN);
        int row = kvHeads * dim;
        for (int j = 0; j < rows.length / row; j++) {
            System.arraycopy(rows, j * row, c, (table[j / blockSize] * blockSize + j % blockSize) * row, row);
        }
        return c;
    }
}
