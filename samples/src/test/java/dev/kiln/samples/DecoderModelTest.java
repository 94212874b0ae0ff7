package dev.kiln.samples;

import dev.kiln.Kiln;
import dev.kiln.samples.PagedKvCache.Sequence;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static dev.kiln.nn.F.embedding;
import static dev.kiln.nn.F.linear;
import static dev.kiln.nn.F.rmsNorm;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The paged model against recomputing each whole sequence with {@link DecoderBlock}s (dense
 * causal attention), through prefill and decode steps, alone and in batches, eager and
 * compiled; and the cache's bookkeeping.
 */
class DecoderModelTest {
    private static final DecoderModel.Config SMALL = new DecoderModel.Config(50, 2,
            new DecoderBlock.Config(32, 4, 2, 8, 48, 10_000, 1e-5));
    private static final DecoderModel.Weights WEIGHTS = gained(DecoderModel.Weights.random(SMALL, 5));

    /** Non-unit norm gains, so that a gain applied to the wrong tensor shows. */
    private static DecoderModel.Weights gained(DecoderModel.Weights w) {
        List<DecoderBlock.Weights> layers = new ArrayList<>();
        int seed = 100;
        for (DecoderBlock.Weights l : w.layers()) {
            layers.add(new DecoderBlock.Weights(Tensor.rand(seed++, 32).add(0.5), l.wq(), l.wk(), l.wv(), l.wo(),
                    Tensor.rand(seed++, 32).add(0.5), l.wGate(), l.wUp(), l.wDown()));
        }
        return new DecoderModel.Weights(w.embedding(), layers, Tensor.rand(seed, 32).add(0.5), w.lmHead());
    }

    private static PagedKvCache cache() { return new PagedKvCache(SMALL.layers(), 24, 4, 2, 8, 8); }

    /** Logits [T, vocab] of every position of {@code tokens}, computed over the whole sequence at once. */
    private static float[] dense(int[] tokens) {
        int t = tokens.length, d = SMALL.dModel();
        Tensor x = embedding(Tensor.of(tokens, t), WEIGHTS.embedding()).reshape(1, t, d);
        for (DecoderBlock.Weights lw : WEIGHTS.layers()) x = new DecoderBlock(SMALL.block(), lw).forward(x, Tensor.arange(t));
        return linear(rmsNorm(x.reshape(t, d), new int[] {d}, WEIGHTS.finalNorm(), 1e-5), WEIGHTS.lmHead(), null).toFloatArray();
    }

    private static void assertLogitsOfPosition(float[] expectedAll, int position, float[] actual, int row, String what) {
        int v = SMALL.vocab();
        for (int i = 0; i < v; i++) {
            float e = expectedAll[position * v + i], a = actual[row * v + i];
            if (Math.abs(a - e) > 2e-5 + 2e-5 * Math.abs(e)) fail(what + ": logit " + i + " is " + a + ", expected " + e);
        }
    }

    private static int[] randomTokens(Random r, int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = r.nextInt(SMALL.vocab());
        return t;
    }

    @Test
    void prefillThenDecodeGivesTheLogitsOfRecomputingTheWholeSequence() {
        Random r = new Random(1);
        int[] text = randomTokens(r, 15);
        float[] expected = dense(text);
        PagedKvCache cache = cache();
        DecoderModel model = new DecoderModel(SMALL, WEIGHTS, cache);
        Sequence s = cache.newSequence();
        // A prompt spanning two blocks, a chunk of three, then single tokens across block boundaries.
        int[][] chunks = {Arrays.copyOfRange(text, 0, 6), Arrays.copyOfRange(text, 6, 9)};
        int at = 0;
        for (int[] chunk : chunks) {
            at += chunk.length;
            float[] logits = model.step(cache.prepare(List.of(s), List.of(chunk))).toFloatArray();
            assertLogitsOfPosition(expected, at - 1, logits, 0, "after " + at + " tokens");
        }
        for (; at < text.length; at++) {
            float[] logits = model.step(cache.prepare(List.of(s), List.of(new int[] {text[at]}))).toFloatArray();
            assertLogitsOfPosition(expected, at, logits, 0, "decoding token " + at);
        }
        assertEquals(text.length, s.length());
    }

    @Test
    void aBatchGivesEachSequenceItsOwnLogits() {
        Random r = new Random(2);
        int[][] texts = {randomTokens(r, 9), randomTokens(r, 3), randomTokens(r, 14)};
        int[] prompts = {5, 1, 11};
        PagedKvCache cache = cache();
        DecoderModel model = new DecoderModel(SMALL, WEIGHTS, cache);
        List<Sequence> seqs = List.of(cache.newSequence(), cache.newSequence(), cache.newSequence());
        List<int[]> prefill = new ArrayList<>();
        for (int i = 0; i < 3; i++) prefill.add(Arrays.copyOf(texts[i], prompts[i]));
        float[] logits = model.step(cache.prepare(seqs, prefill)).toFloatArray();
        for (int i = 0; i < 3; i++) assertLogitsOfPosition(dense(texts[i]), prompts[i] - 1, logits, i, "prefill of sequence " + i);
        // Decode all three together, then only the two longer ones: a batch's membership changes step to step.
        for (int step = 0; step < 2; step++) {
            List<int[]> next = new ArrayList<>();
            for (int i = 0; i < 3; i++) next.add(new int[] {texts[i][prompts[i] + step]});
            logits = model.step(cache.prepare(seqs, next)).toFloatArray();
            for (int i = 0; i < 3; i++) {
                assertLogitsOfPosition(dense(texts[i]), prompts[i] + step, logits, i, "decode step " + step + " of sequence " + i);
            }
        }
        List<Sequence> longer = List.of(seqs.get(2), seqs.get(0));
        logits = model.step(cache.prepare(longer, List.of(new int[] {texts[2][13]}, new int[] {texts[0][7]}))).toFloatArray();
        assertLogitsOfPosition(dense(texts[2]), 13, logits, 0, "sequence 2 in a smaller batch");
        assertLogitsOfPosition(dense(texts[0]), 7, logits, 1, "sequence 0 in a smaller batch");
    }

    @Test
    void aCompiledModelServesTheSameStepsAsTheEagerOne() {
        Random r = new Random(3);
        int[][] texts = {randomTokens(r, 12), randomTokens(r, 10)};
        PagedKvCache eagerCache = cache(), compiledCache = cache();
        DecoderModel eager = new DecoderModel(SMALL, WEIGHTS, eagerCache);
        DecoderModel compiled = Kiln.compile(new DecoderModel(SMALL, WEIGHTS, compiledCache));
        List<Sequence> e = List.of(eagerCache.newSequence(), eagerCache.newSequence());
        List<Sequence> c = List.of(compiledCache.newSequence(), compiledCache.newSequence());
        for (int at = 4; at <= 10; at++) {
            int from = at == 4 ? 0 : at - 1;
            List<int[]> tokens = List.of(Arrays.copyOfRange(texts[0], from, at), Arrays.copyOfRange(texts[1], from, at));
            float[] want = eager.step(eagerCache.prepare(e, tokens)).toFloatArray();
            float[] got = compiled.step(compiledCache.prepare(c, tokens)).toFloatArray();
            assertArrayEquals(want, got, 1e-5f, "step ending at " + at);
        }
        for (int l = 0; l < SMALL.layers(); l++) {
            assertArrayEquals(eagerCache.keys().get(l).toFloatArray(), compiledCache.keys().get(l).toFloatArray(), 1e-6f, "keys of layer " + l);
            assertArrayEquals(eagerCache.values().get(l).toFloatArray(), compiledCache.values().get(l).toFloatArray(), 1e-6f,
                    "values of layer " + l);
        }
        PagedKvCache.Step next = compiledCache.prepare(c, List.of(new int[] {texts[0][10]}, new int[] {texts[1][9]}));
        String explained = Kiln.explain(compiled, next.tokens(), next.positions(), next.slots(), next.blockTables(),
                next.contextLens(), next.queryStartLoc(), next.lastRows()).toString();
        // Prefill and decode have their own signatures (other models of this class may have added more:
        // instances of a class share compiled graphs); each step is one graph, its cache writes included.
        String[] signatures = explained.split("\n  signature: ");
        assertTrue(signatures.length >= 3, explained);
        for (int i = 1; i < signatures.length; i++) {
            assertFalse(signatures[i].contains("graph break"), signatures[i]);
            assertEquals(SMALL.layers(), signatures[i].split("eager reshape_and_cache", -1).length - 1, signatures[i]);
        }
    }

    @Test
    void twoCompiledModelsShareTheirGraphsButEachWritesItsOwnCache() {
        Random r = new Random(4);
        int[][] texts = {randomTokens(r, 6), randomTokens(r, 6)};
        PagedKvCache[] eagerCaches = {cache(), cache()}, compiledCaches = {cache(), cache()};
        DecoderModel[] eager = new DecoderModel[2], compiled = new DecoderModel[2];
        List<List<Sequence>> eagerSeqs = new java.util.ArrayList<>(), compiledSeqs = new java.util.ArrayList<>();
        for (int m = 0; m < 2; m++) {
            eager[m] = new DecoderModel(SMALL, WEIGHTS, eagerCaches[m]);
            compiled[m] = Kiln.compile(new DecoderModel(SMALL, WEIGHTS, compiledCaches[m]));
            eagerSeqs.add(List.of(eagerCaches[m].newSequence()));
            compiledSeqs.add(List.of(compiledCaches[m].newSequence()));
        }
        for (int at = 0; at < 6; at++) {
            for (int m = 0; m < 2; m++) {
                List<int[]> tokens = List.of(new int[] {texts[m][at]});
                float[] want = eager[m].step(eagerCaches[m].prepare(eagerSeqs.get(m), tokens)).toFloatArray();
                float[] got = compiled[m].step(compiledCaches[m].prepare(compiledSeqs.get(m), tokens)).toFloatArray();
                assertArrayEquals(want, got, 1e-5f, "model " + m + " at " + at);
            }
        }
        for (int m = 0; m < 2; m++) {
            for (int l = 0; l < SMALL.layers(); l++) {
                assertArrayEquals(eagerCaches[m].keys().get(l).toFloatArray(), compiledCaches[m].keys().get(l).toFloatArray(), 1e-6f,
                        "keys of model " + m + ", layer " + l);
            }
        }
    }

    // ---------------------------------------------------------------- the cache's bookkeeping

    @Test
    void aStepTheCacheCannotHoldFailsBeforeTakingAnyBlock() {
        PagedKvCache cache = new PagedKvCache(1, 5, 4, 2, 8, 3);
        Sequence a = cache.newSequence(), b = cache.newSequence();
        cache.commit(cache.prepare(List.of(a), List.of(new int[9])));
        assertEquals(2, cache.freeBlocks());
        var tooLong = assertThrows(KilnException.class, () -> cache.prepare(List.of(a), List.of(new int[4])));
        assertEquals("PagedKvCache.prepare: sequence 0 (9 tokens in 3 blocks) would hold 13 tokens, more than the 12 its block"
                + " table addresses (3 blocks of 4)", tooLong.getMessage());
        var full = assertThrows(KilnException.class, () -> cache.prepare(List.of(a, b), List.of(new int[1], new int[9])));
        assertEquals("PagedKvCache.prepare: the step needs 3 more blocks, the cache has 2 free", full.getMessage());
        assertEquals(2, cache.freeBlocks());
        assertEquals(9, a.length());
        assertThrows(KilnException.class, () -> cache.prepare(List.of(a, a), List.of(new int[1], new int[1])));
        assertThrows(KilnException.class, () -> cache.prepare(List.of(b), List.of(new int[0])));
    }

    @Test
    void blockTablesSlotsAndLengthsFollowTheSequencesBlocks() {
        PagedKvCache cache = new PagedKvCache(1, 8, 4, 2, 8, 4);
        Sequence a = cache.newSequence(), b = cache.newSequence();
        cache.commit(cache.prepare(List.of(a, b), List.of(new int[] {1, 2, 3, 4, 5}, new int[] {6, 7})));
        // a took blocks 0 and 1, b block 2; now a grows into block 3 and b stays in block 2.
        PagedKvCache.Step step = cache.prepare(List.of(b, a), List.of(new int[] {8}, new int[] {9, 10, 11, 12}));
        assertArrayEquals(new int[] {8, 9, 10, 11, 12}, step.tokens().toIntArray());
        assertArrayEquals(new int[] {2, 5, 6, 7, 8}, step.positions().toIntArray());
        assertArrayEquals(new int[] {10, 5, 6, 7, 12}, step.slots().toIntArray());
        assertArrayEquals(new int[] {2, 0, 0, 0, 0, 1, 3, 0}, step.blockTables().toIntArray());
        assertArrayEquals(new int[] {3, 9}, step.contextLens().toIntArray());
        assertArrayEquals(new int[] {0, 1, 5}, step.queryStartLoc().toIntArray());
        assertArrayEquals(new int[] {0, 4}, step.lastRows().toIntArray());
        cache.commit(step);
        assertEquals(3, b.length());
        assertEquals(9, a.length());
        var stale = assertThrows(KilnException.class, () -> cache.commit(step));
        assertTrue(stale.getMessage().contains("changed since the step was prepared at length 2"), stale.getMessage());

        a.truncate(5);
        assertEquals(5, a.length());
        assertThrows(KilnException.class, () -> a.truncate(6));
        cache.free(b);
        assertEquals(5, cache.freeBlocks());
        assertThrows(KilnException.class, () -> cache.prepare(List.of(b), List.of(new int[1])));
        PagedKvCache other = new PagedKvCache(1, 8, 4, 2, 8, 4);
        var foreign = assertThrows(KilnException.class, () -> other.prepare(List.of(a), List.of(new int[1])));
        assertEquals("PagedKvCache.prepare: sequence 0 belongs to another cache", foreign.getMessage());
    }
}
