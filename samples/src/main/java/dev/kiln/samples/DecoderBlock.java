package dev.kiln.samples;

import dev.kiln.nn.Module;
import dev.kiln.tensor.Tensor;

import static dev.kiln.nn.F.linear;
import static dev.kiln.nn.F.rmsNorm;
import static dev.kiln.nn.F.rotaryEmbedding;
import static dev.kiln.nn.F.rotaryTables;
import static dev.kiln.nn.F.scaledDotProductAttention;
import static dev.kiln.nn.F.silu;

/**
 * A LLaMA-style transformer decoder block written as a Kiln user would write it:
 * pre-norm RMSNorm, rotary position embedding, causal grouped-query attention, a
 * SwiGLU MLP, and a residual connection around each half.
 *
 * <pre>{@code
 * var block = new DecoderBlock(DecoderBlock.Config.w4(), 42);
 * Tensor y = block.forward(Tensor.randn(7, 1, 256, 512), Tensor.arange(256));
 * DecoderBlock compiled = Kiln.compile(block);   // the same forward, traced into graphs
 * }</pre>
 *
 * <p>Not final, so that {@code Kiln.compile} can subclass it; its weights record is
 * found as parameters through {@link Module}.
 */
public class DecoderBlock extends Module {

    /** Sizes of the block; {@link #w4()} is the benchmark workload W4. */
    public record Config(int dModel, int heads, int kvHeads, int headDim, int hidden, double ropeBase, double normEps) {
        public Config {
            if (kvHeads <= 0 || heads % kvHeads != 0) {
                throw new IllegalArgumentException("heads (" + heads + ") must be a multiple of kvHeads (" + kvHeads + ")");
            }
        }

        public static Config w4() { return new Config(512, 8, 2, 64, 1536, 10_000, 1e-5); }
    }

    /**
     * The block's parameters. Linear weights are [out, in] as {@code F.linear} takes them; the
     * norm gains are [dModel].
     */
    public record Weights(Tensor attnNorm, Tensor wq, Tensor wk, Tensor wv, Tensor wo,
                          Tensor mlpNorm, Tensor wGate, Tensor wUp, Tensor wDown) {

        /** Random weights from {@code seed}, scaled by 1/sqrt(fan-in) as an initialised model has them; unit norm gains. */
        public static Weights random(Config cfg, long seed) {
            int d = cfg.dModel(), qDim = cfg.heads() * cfg.headDim(), kvDim = cfg.kvHeads() * cfg.headDim();
            return new Weights(Tensor.ones(d), linearWeight(seed, 1, qDim, d), linearWeight(seed, 2, kvDim, d),
                    linearWeight(seed, 3, kvDim, d), linearWeight(seed, 4, d, qDim), Tensor.ones(d),
                    linearWeight(seed, 5, cfg.hidden(), d), linearWeight(seed, 6, cfg.hidden(), d),
                    linearWeight(seed, 7, d, cfg.hidden()));
        }

        private static Tensor linearWeight(long seed, int index, int out, int in) {
            return Tensor.normal(seed * 31 + index, 0, 1 / Math.sqrt(in), out, in);
        }
    }

    private final Config cfg;
    private final Weights w;

    public DecoderBlock(Config cfg, Weights weights) {
        this.cfg = cfg;
        this.w = weights;
    }

    /** A block with {@link Weights#random random weights} from {@code seed}. */
    public DecoderBlock(Config cfg, long seed) {
        this(cfg, Weights.random(cfg, seed));
    }

    public Config config() { return cfg; }

    /** {@code x} [batch, seq, dModel] at integer {@code positions} [seq] gives [batch, seq, dModel]. */
    public Tensor forward(Tensor x, Tensor positions) {
        int[] normalized = {cfg.dModel()};
        Tensor h = x.add(attention(rmsNorm(x, normalized, w.attnNorm(), cfg.normEps()), positions));
        return h.add(mlp(rmsNorm(h, normalized, w.mlpNorm(), cfg.normEps())));
    }

    private Tensor attention(Tensor x, Tensor positions) {
        int batch = x.size(0), seq = x.size(1);
        Tensor q = splitHeads(linear(x, w.wq(), null), cfg.heads());
        Tensor k = splitHeads(linear(x, w.wk(), null), cfg.kvHeads());
        Tensor v = splitHeads(linear(x, w.wv(), null), cfg.kvHeads());
        Tensor[] cosSin = rotaryTables(positions, cfg.headDim(), cfg.ropeBase());
        q = rotaryEmbedding(q, cosSin[0], cosSin[1], false);
        k = rotaryEmbedding(k, cosSin[0], cosSin[1], false);
        Tensor o = scaledDotProductAttention(q, k, v, null, true, null, true);
        return linear(o.transpose(1, 2).reshape(batch, seq, cfg.heads() * cfg.headDim()), w.wo(), null);
    }

    /** [batch, seq, n * headDim] to [batch, n, seq, headDim]. */
    private Tensor splitHeads(Tensor t, int n) {
        return t.reshape(t.size(0), t.size(1), n, cfg.headDim()).transpose(1, 2);
    }

    private Tensor mlp(Tensor x) {
        return linear(silu(linear(x, w.wGate(), null)).mul(linear(x, w.wUp(), null)), w.wDown(), null);
    }
}
