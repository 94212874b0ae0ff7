package dev.kiln.nn;

import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.util.Arrays;

/**
 * Functional neural-network ops, in the manner of {@code torch.nn.functional}:
 * {@code import static dev.kiln.nn.F.*;}.
 */
public final class F {
    private F() {}

    public static Tensor relu(Tensor x) { return x.relu(); }
    public static Tensor sigmoid(Tensor x) { return x.sigmoid(); }
    public static Tensor tanh(Tensor x) { return x.tanh(); }
    public static Tensor silu(Tensor x) { return x.silu(); }
    public static Tensor softplus(Tensor x) { return x.softplus(); }

    /** GELU, exact form {@code x/2 (1 + erf(x/sqrt 2))}. */
    public static Tensor gelu(Tensor x) { return x.gelu(); }

    /** GELU with PyTorch's {@code approximate}: "none" (erf) or "tanh". */
    public static Tensor gelu(Tensor x, String approximate) {
        return switch (approximate) {
            case "none" -> x.gelu();
            case "tanh" -> Dispatch.apply1(new Op.Unary(UnaryFn.GELU_TANH), x);
            default -> throw new IllegalArgumentException("gelu: approximate must be \"none\" or \"tanh\", got \"" + approximate + "\"");
        };
    }

    public static Tensor softmax(Tensor x, int dim) { return x.softmax(dim); }
    public static Tensor logSoftmax(Tensor x, int dim) { return x.logSoftmax(dim); }
    public static Tensor where(Tensor condition, Tensor x, Tensor y) { return Tensor.where(condition, x, y); }

    /** {@code x @ weight^T + bias}, weight shaped [out, in]; bias may be null. */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        if (weight.rank() != 2 && weight.rank() != 1) {
            throw new KilnShapeException("linear: weight must be 1-D or 2-D [out_features, in_features], got shape " + weight.shape());
        }
        Tensor y = x.matmul(weight.mT());
        return bias == null ? y : y.add(bias);
    }

    /** Rows of {@code weight} [num_embeddings, dim] picked by integer {@code ids} of any shape. */
    public static Tensor embedding(Tensor ids, Tensor weight) {
        if (weight.rank() != 2) {
            throw new KilnShapeException("embedding: weight must be 2-D [num_embeddings, embedding_dim], got shape " + weight.shape());
        }
        return Dispatch.apply1(new Op.Gather(0), weight, ids);
    }

    /** Layer normalisation over the trailing {@code normalizedShape}; weight and bias may be null. */
    public static Tensor layerNorm(Tensor x, int[] normalizedShape, Tensor weight, Tensor bias, double eps) {
        return layerNormWithStats(x, normAxis("layer_norm", x, normalizedShape), weight, bias, eps)[0];
    }

    /**
     * Layer normalisation over dimensions {@code axis..} returning [y, mean, inverse std],
     * the statistics shaped as x with the normalised dimensions set to 1 (ONNX LayerNormalization).
     */
    public static Tensor[] layerNormWithStats(Tensor x, int axis, Tensor weight, Tensor bias, double eps) {
        int a = axis < 0 ? axis + x.rank() : axis;
        if (a < 0 || a >= Math.max(x.rank(), 1)) {
            throw new KilnShapeException("layer_norm: axis " + axis + " is out of range for shape " + x.shape());
        }
        Op op = new Op.LayerNorm(a, eps, weight != null, bias != null);
        return Dispatch.apply(op, present(x, weight, bias));
    }

    /** RMS normalisation over the trailing {@code normalizedShape}: {@code x / sqrt(mean(x^2) + eps) * weight}. */
    public static Tensor rmsNorm(Tensor x, int[] normalizedShape, Tensor weight, double eps) {
        return rmsNormAxis(x, normAxis("rms_norm", x, normalizedShape), weight, eps);
    }

    /** RMS normalisation over dimensions {@code axis..} (ONNX RMSNormalization). */
    public static Tensor rmsNormAxis(Tensor x, int axis, Tensor weight, double eps) {
        int a = axis < 0 ? axis + x.rank() : axis;
        if (a < 0 || a >= Math.max(x.rank(), 1)) {
            throw new KilnShapeException("rms_norm: axis " + axis + " is out of range for shape " + x.shape());
        }
        return Dispatch.apply1(new Op.RmsNorm(a, eps, weight != null), present(x, weight, null));
    }

    private static int normAxis(String op, Tensor x, int[] normalizedShape) {
        int r = x.rank(), n = normalizedShape.length;
        int[] tail = n <= r ? Arrays.copyOfRange(x.shape().dims(), r - n, r) : null;
        if (tail == null || !Arrays.equals(tail, normalizedShape)) {
            throw new KilnShapeException(op + ": normalized_shape " + Shape.of(normalizedShape)
                    + " does not match the trailing dimensions of input " + x.shape());
        }
        return r - n;
    }

    private static Tensor[] present(Tensor... ts) {
        return Arrays.stream(ts).filter(t -> t != null).toArray(Tensor[]::new);
    }

    /**
     * Rotary position embedding of the last dimension of x, given cos and sin of
     * shape broadcastable to x's with the last dimension halved. {@code interleaved}
     * rotates pairs (2i, 2i+1) (GPT-J style); otherwise (i, i + D/2) (GPT-NeoX, LLaMA).
     */
    public static Tensor rotaryEmbedding(Tensor x, Tensor cos, Tensor sin, boolean interleaved) {
        return Dispatch.apply1(new Op.Rope(interleaved), x, cos, sin);
    }

    /** cos and sin tables [positions, headDim/2] for rotary embedding with the given base (10000 in LLaMA). */
    public static Tensor[] rotaryTables(Tensor positions, int headDim, double base) {
        if (headDim % 2 != 0) throw new KilnShapeException("rotary_tables: head dimension must be even, got " + headDim);
        Tensor i = Tensor.arange(0, headDim / 2, 1, DType.FLOAT32);
        Tensor invFreq = i.mul(-2.0 * Math.log(base) / headDim).exp();
        Tensor angles = positions.to(DType.FLOAT32).unsqueeze(-1).mul(invFreq);
        return new Tensor[] {angles.cos(), angles.sin()};
    }

    /** Attention with no mask, not causal, default scale. */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v) {
        return scaledDotProductAttention(q, k, v, null, false, null, false);
    }

    /**
     * {@code torch.nn.functional.scaled_dot_product_attention}: {@code softmax(q k^T * scale + mask) v}.
     * A bool mask keeps positions where it is true; a float mask is added. {@code isCausal}
     * masks key j for query i when j > i (top-left aligned) and cannot be combined with a mask.
     * {@code scale} null means {@code 1/sqrt(E)}. With {@code enableGqa}, query head h uses
     * key/value head {@code h / (Hq / Hkv)}. A row with every key masked gives zeros, and
     * masked keys never contribute, even when they hold NaN or infinity.
     */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor attnMask, boolean isCausal,
                                                   Double scale, boolean enableGqa) {
        double s = scale != null ? scale : 1.0 / Math.sqrt(q.size(-1));
        Op op = new Op.ScaledDotProductAttention(isCausal, s, enableGqa, attnMask != null);
        return attnMask == null ? Dispatch.apply1(op, q, k, v) : Dispatch.apply1(op, q, k, v, attnMask);
    }

    /** Short name of {@link #scaledDotProductAttention(Tensor, Tensor, Tensor, Tensor, boolean, Double, boolean)}. */
    public static Tensor sdpa(Tensor q, Tensor k, Tensor v, Tensor attnMask, boolean isCausal) {
        return scaledDotProductAttention(q, k, v, attnMask, isCausal, null, false);
    }

    /** Einstein summation ({@code torch.einsum}), lowered to views, products, sums and matmul. */
    public static Tensor einsum(String equation, Tensor... operands) {
        return Einsum.evaluate(equation, operands);
    }
}
