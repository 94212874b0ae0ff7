package dev.kiln.nn;

import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;

/**
 * Attention at the kernel's level, below {@link F#scaledDotProductAttention}: the
 * FlashAttention kernel's options without PyTorch's restrictions. A mask and causal
 * masking apply together; causal masking takes an offset; scores can be soft-capped;
 * the key/value partition size (split-KV) can be chosen. Shapes, masks and GQA are as
 * in {@link F#scaledDotProductAttention}: q [..., L, E], k [..., S, E], v [..., S, Ev],
 * a bool mask (true takes part) or float mask (added) broadcastable to [..., L, S].
 *
 * <p>The score of query i and key j is {@code s = scale * q_i . k_j}, then
 * {@code softcap * tanh(s / softcap)} when a softcap is set, then the float mask is added
 * (a bool mask, -inf in a float mask, and the causal rule exclude the key). A row that
 * sees no key is zero; excluded keys never contribute, even when they hold NaN or infinity.
 */
public final class Attention {
    private Attention() {}

    /**
     * Kernel options.
     *
     * @param causal        query row i sees key j only when {@code j <= i + causalOffset}
     * @param causalOffset  0 aligns the causal mask top-left (as SDPA's is_causal); {@code S - L}
     *                      bottom-right, for a query block that continues a cached prefix
     * @param scale         multiplies q.k; null means {@code 1/sqrt(E)}
     * @param softcap       {@code softcap * tanh(s / softcap)} on the scaled scores (Gemma 2); 0 for none
     * @param enableGqa     query head h reads key/value head {@code h / (Hq / Hkv)}
     * @param partitionSize keys per key/value partition: partitions run separately and are merged
     *                      exactly through their log-sum-exp; 0 lets the device choose
     */
    public record Options(boolean causal, long causalOffset, Double scale, double softcap, boolean enableGqa,
                          int partitionSize) {
        /** No causal masking, default scale, no softcap, no GQA, device-chosen partitions. */
        public static final Options DEFAULT = new Options(false, 0, null, 0, false, 0);

        public Options {
            if (!(softcap >= 0) || Double.isInfinite(softcap)) {
                throw new KilnShapeException("attention: softcap must be finite and >= 0 (0 for none), got " + softcap);
            }
            if (partitionSize < 0) {
                throw new KilnShapeException("attention: partition size must be >= 0 (0 lets the device choose), got " + partitionSize);
            }
        }

        /** Causal masking aligned top-left (offset 0). */
        public Options withCausal() { return withCausal(0); }

        /** Causal masking where query row i sees keys {@code j <= i + offset}. */
        public Options withCausal(long offset) { return new Options(true, offset, scale, softcap, enableGqa, partitionSize); }

        public Options withScale(double s) { return new Options(causal, causalOffset, s, softcap, enableGqa, partitionSize); }

        public Options withSoftcap(double cap) { return new Options(causal, causalOffset, scale, cap, enableGqa, partitionSize); }

        public Options withGqa() { return new Options(causal, causalOffset, scale, softcap, true, partitionSize); }

        public Options withPartitionSize(int keys) { return new Options(causal, causalOffset, scale, softcap, enableGqa, keys); }
    }

    /** Attention with {@code options} and no mask. */
    public static Tensor attention(Tensor q, Tensor k, Tensor v, Options options) {
        return attention(q, k, v, null, options);
    }

    /** Attention with {@code options} and an optional {@code mask} (null for none). */
    public static Tensor attention(Tensor q, Tensor k, Tensor v, Tensor mask, Options options) {
        double s = options.scale() != null ? options.scale() : 1.0 / Math.sqrt(q.size(-1));
        Op op = new Op.Attention(options.causal(), options.causalOffset(), s, options.softcap(), options.enableGqa(),
                mask != null, options.partitionSize(), false);
        return mask == null ? Dispatch.apply1(op, q, k, v) : Dispatch.apply1(op, q, k, v, mask);
    }
}
