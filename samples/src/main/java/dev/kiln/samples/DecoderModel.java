package dev.kiln.samples;

import dev.kiln.nn.Module;
import dev.kiln.nn.Serving;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

import static dev.kiln.nn.F.embedding;
import static dev.kiln.nn.F.linear;
import static dev.kiln.nn.F.rmsNorm;
import static dev.kiln.nn.F.rotaryEmbedding;
import static dev.kiln.nn.F.rotaryTables;
import static dev.kiln.nn.F.silu;

/**
 * A LLaMA-style language model served from a {@link PagedKvCache}: token embedding, a stack of
 * {@link DecoderBlock}s' layers (RMSNorm, rotary embedding, causal grouped-query attention,
 * SwiGLU), a final norm and an LM head. One {@link #forward} serves prefill and decode alike:
 * each sequence of a step brings one or more new tokens, whose keys and values go into the
 * cache ({@code Serving.reshapeAndCache}) before they attend to everything the sequence holds
 * ({@code Serving.pagedAttention}).
 *
 * <pre>{@code
 * var cache = new PagedKvCache(cfg.layers(), 256, 16, cfg.kvHeads(), cfg.headDim(), 32);
 * var model = Kiln.compile(new DecoderModel(cfg, DecoderModel.Weights.random(cfg, 7), cache));
 * var seq = cache.newSequence();
 * Tensor logits = model.step(cache.prepare(List.of(seq), List.of(prompt)));   // prefill
 * }</pre>
 *
 * <p>Compiled, a step is one graph, the cache writes included (they update the caches in
 * place), replayed without re-running this Java code.
 */
public class DecoderModel extends Module {

    /** Sizes of the model; {@link #w5()} is the benchmark workload W5's. */
    public record Config(int vocab, int layers, DecoderBlock.Config block) {
        public Config {
            if (vocab < 1 || layers < 1) throw new IllegalArgumentException("vocab and layers must be positive, got " + vocab + ", " + layers);
        }

        public static Config w5() { return new Config(32_000, 8, DecoderBlock.Config.w4()); }

        public int dModel() { return block.dModel(); }
    }

    /** The model's parameters: embedding and LM head [vocab, dModel], the layers', and the final norm's gain [dModel]. */
    public record Weights(Tensor embedding, List<DecoderBlock.Weights> layers, Tensor finalNorm, Tensor lmHead) {
        public Weights {
            layers = List.copyOf(layers);
        }

        /** Random weights from {@code seed}: each layer's as {@link DecoderBlock.Weights#random} draws them. */
        public static Weights random(Config cfg, long seed) {
            List<DecoderBlock.Weights> layers = new ArrayList<>();
            for (int l = 0; l < cfg.layers(); l++) layers.add(DecoderBlock.Weights.random(cfg.block(), seed + 1000L * (l + 1)));
            int d = cfg.dModel();
            return new Weights(Tensor.randn(seed, cfg.vocab(), d), layers, Tensor.ones(d),
                    Tensor.normal(seed + 1, 0, 1 / Math.sqrt(d), cfg.vocab(), d));
        }
    }

    private final Config cfg;
    private final Weights w;
    private final PagedKvCache cache;
    /** The cache's tensors as fields, so that a compiled model finds them among its parameters. */
    private final List<Tensor> keyCaches, valueCaches;

    public DecoderModel(Config cfg, Weights weights, PagedKvCache cache) {
        if (weights.layers().size() != cfg.layers() || cache.keys().size() != cfg.layers()) {
            throw new KilnException("DecoderModel: config has " + cfg.layers() + " layers, the weights " + weights.layers().size()
                    + " and the cache " + cache.keys().size());
        }
        Tensor k = cache.keys().getFirst();
        if (k.size(2) != cfg.block().kvHeads() || k.size(3) != cfg.block().headDim()) {
            throw new KilnException("DecoderModel: the cache " + k.shape() + " holds " + k.size(2) + " KV heads of " + k.size(3)
                    + ", the model has " + cfg.block().kvHeads() + " of " + cfg.block().headDim());
        }
        this.cfg = cfg;
        this.w = weights;
        this.cache = cache;
        this.keyCaches = cache.keys();
        this.valueCaches = cache.values();
    }

    public Config config() { return cfg; }

    public PagedKvCache cache() { return cache; }

    /**
     * Runs a step {@link PagedKvCache#prepare prepared} on this model's cache and commits it:
     * the logits [sequences, vocab] of each sequence's last new token.
     */
    public Tensor step(PagedKvCache.Step step) {
        Tensor logits = forward(step.tokens(), step.positions(), step.slots(), step.blockTables(), step.contextLens(),
                step.queryStartLoc(), step.lastRows());
        cache.commit(step);
        return logits;
    }

    /**
     * The logits [S, vocab] at {@code lastRows} of the new tokens [T] at {@code positions}, after
     * writing their keys and values at {@code slots}; the other arguments are
     * {@code Serving.pagedAttention}'s. {@link #step} fills them from a {@link PagedKvCache.Step}.
     */
    public Tensor forward(Tensor tokens, Tensor positions, Tensor slots, Tensor blockTables, Tensor contextLens,
                          Tensor queryStartLoc, Tensor lastRows) {
        DecoderBlock.Config b = cfg.block();
        int[] normalized = {b.dModel()};
        Tensor x = embedding(tokens, w.embedding());
        Tensor[] cosSin = rotaryTables(positions, b.headDim(), b.ropeBase());
        // [T, headDim/2] to [T, 1, headDim/2]: one angle per token, shared by its heads.
        Tensor cos = cosSin[0].unsqueeze(1), sin = cosSin[1].unsqueeze(1);
        for (int l = 0; l < cfg.layers(); l++) {
            DecoderBlock.Weights lw = w.layers().get(l);
            Tensor h = rmsNorm(x, normalized, lw.attnNorm(), b.normEps());
            Tensor q = rotaryEmbedding(heads(linear(h, lw.wq(), null), b.heads()), cos, sin, false);
            Tensor k = rotaryEmbedding(heads(linear(h, lw.wk(), null), b.kvHeads()), cos, sin, false);
            Tensor v = heads(linear(h, lw.wv(), null), b.kvHeads());
            Serving.reshapeAndCache(k, v, keyCaches.get(l), valueCaches.get(l), slots);
            Tensor a = Serving.pagedAttention(q, keyCaches.get(l), valueCaches.get(l), blockTables, contextLens, queryStartLoc,
                    1 / Math.sqrt(b.headDim()), true, 0, 0);
            x = x.add(linear(a.reshape(a.size(0), b.heads() * b.headDim()), lw.wo(), null));
            Tensor m = rmsNorm(x, normalized, lw.mlpNorm(), b.normEps());
            x = x.add(linear(silu(linear(m, lw.wGate(), null)).mul(linear(m, lw.wUp(), null)), lw.wDown(), null));
        }
        // Only the rows whose next token is wanted go through the final norm and the LM head.
        Tensor last = embedding(lastRows, x);
        return linear(rmsNorm(last, normalized, w.finalNorm(), b.normEps()), w.lmHead(), null);
    }

    /** [T, n * headDim] to [T, n, headDim]. */
    private Tensor heads(Tensor t, int n) {
        return t.reshape(t.size(0), n, cfg.block().headDim());
    }
}
