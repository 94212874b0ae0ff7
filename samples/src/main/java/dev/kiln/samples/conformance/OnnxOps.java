package dev.kiln.samples.conformance;

import dev.kiln.nn.Attention;
import dev.kiln.nn.F;
import dev.kiln.nn.Serving;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * ONNX operators expressed with Kiln's public API ({@link Tensor} methods and {@link F}),
 * plus the kiln.* serving ops ({@link Serving}).
 * Each mapping only translates ONNX conventions (attribute defaults, index and type
 * rules) into calls; the computation itself is always Kiln's own op.
 *
 * <p>Every mapping declares the attributes it understands: a case using any other
 * attribute is unsupported rather than silently run with different semantics.
 */
public final class OnnxOps {
    private OnnxOps() {}

    @FunctionalInterface
    private interface Body {
        Tensor[] apply(OnnxNode node) throws UnsupportedCaseException;
    }

    @FunctionalInterface
    private interface SingleOutput {
        Tensor apply(OnnxNode node) throws UnsupportedCaseException;
    }

    @FunctionalInterface
    private interface Reduction {
        Tensor apply(Tensor x, int[] dims, boolean keepdim);
    }

    private record Mapping(Set<String> attributes, Body body) {}

    private static final Set<String> REDUCE_ATTRIBUTES = Set.of("axes", "keepdims", "noop_with_empty_axes");
    private static final Set<String> NORM_ATTRIBUTES = Set.of("axis", "epsilon", "stash_type");

    private static final Map<String, Mapping> OPS = Map.ofEntries(
            op("Add", n -> n.input(0).add(n.input(1))),
            op("Sub", n -> n.input(0).sub(n.input(1))),
            op("Mul", n -> n.input(0).mul(n.input(1))),
            op("Div", OnnxOps::div),
            // ONNX Pow has the base's type whatever the exponent's; Kiln promotes both.
            op("Pow", n -> n.input(0).pow(n.input(1)).to(n.input(0).dtype())),
            op("Neg", n -> n.input(0).neg()),
            op("Exp", n -> n.input(0).exp()),
            op("Log", n -> n.input(0).log()),
            op("Sqrt", n -> n.input(0).sqrt()),
            op("Tanh", n -> n.input(0).tanh()),
            op("Sigmoid", n -> n.input(0).sigmoid()),
            op("Erf", n -> n.input(0).erf()),
            op("Relu", n -> n.input(0).relu()),
            op("Softplus", n -> n.input(0).softplus()),
            op("Gelu", Set.of("approximate"), n -> F.gelu(n.input(0), n.attributes().string("approximate", "none"))),
            op("Swish", Set.of("alpha"), OnnxOps::swish),
            op("Clip", Set.of("min", "max"), OnnxOps::clip),
            op("Where", n -> Tensor.where(n.input(0), n.input(1), n.input(2))),
            op("And", n -> n.input(0).logicalAnd(n.input(1))),
            op("Or", n -> n.input(0).logicalOr(n.input(1))),
            op("Xor", n -> n.input(0).logicalXor(n.input(1))),
            op("Not", n -> n.input(0).logicalNot()),
            op("BitwiseAnd", n -> n.input(0).bitwiseAnd(n.input(1))),
            op("BitwiseOr", n -> n.input(0).bitwiseOr(n.input(1))),
            op("BitwiseXor", n -> n.input(0).bitwiseXor(n.input(1))),
            op("BitwiseNot", n -> n.input(0).bitwiseNot()),
            op("BitShift", Set.of("direction"), OnnxOps::bitShift),
            op("MatMul", n -> n.input(0).matmul(n.input(1))),
            op("Gemm", Set.of("alpha", "beta", "transA", "transB"), OnnxOps::gemm),
            // Opset 13 semantics: one axis, default -1.
            op("Softmax", Set.of("axis"), n -> n.input(0).softmax(axis(n, -1))),
            op("LogSoftmax", Set.of("axis"), n -> n.input(0).logSoftmax(axis(n, -1))),
            multi("LayerNormalization", NORM_ATTRIBUTES, OnnxOps::layerNorm),
            op("RMSNormalization", NORM_ATTRIBUTES, OnnxOps::rmsNorm),
            op("ReduceSum", REDUCE_ATTRIBUTES, n -> reduce(n, Tensor::sum)),
            op("ReduceMean", REDUCE_ATTRIBUTES, n -> reduce(n, Tensor::mean)),
            op("ReduceMax", REDUCE_ATTRIBUTES, n -> reduce(n, Tensor::max)),
            op("ReduceSumSquare", REDUCE_ATTRIBUTES, n -> reduce(n, (x, dims, keep) -> x.mul(x).sum(dims, keep))),
            op("ArgMax", Set.of("axis", "keepdims", "select_last_index"), n -> n.input(0).argmax(axis(n, 0),
                    flag(n, "keepdims", true), flag(n, "select_last_index", false))),
            // ONNX keeps an integer input's type; Kiln's integer cumsum widens to int64 as PyTorch's does.
            op("CumSum", Set.of("exclusive", "reverse"), n -> n.input(0).cumsum(Math.toIntExact(n.integer(1)),
                    flag(n, "exclusive", false), flag(n, "reverse", false)).to(n.input(0).dtype())),
            op("Trilu", Set.of("upper"), OnnxOps::trilu),
            op("Concat", Set.of("axis"), OnnxOps::concat),
            op("Transpose", Set.of("perm"), OnnxOps::transpose),
            op("Reshape", Set.of("allowzero"), OnnxOps::reshape),
            // ONNX Expand broadcasts the input and the shape against each other (either may be larger).
            op("Expand", n -> n.input(0).broadcastTo(Shape.broadcast("Expand", n.input(0).shape(), Shape.of(n.integers(1))))),
            op("Slice", Set.of("starts", "ends", "axes"), OnnxOps::slice),
            op("Gather", Set.of("axis"), n -> n.input(0).indexSelect(axis(n, 0), n.input(1))),
            op("GatherElements", Set.of("axis"), n -> n.input(0).gather(axis(n, 0), n.input(1))),
            op("Einsum", Set.of("equation"), OnnxOps::einsum),
            multi("Attention", Set.of("is_causal", "q_num_heads", "kv_num_heads", "scale", "softcap", "softmax_precision",
                    "qk_matmul_output_mode"), OnnxOps::attention),
            multi("kiln.ReshapeAndCache", Set.of(), OnnxOps::reshapeAndCache),
            op("kiln.PagedAttention", Set.of("scale", "causal", "sliding_window", "softcap"), OnnxOps::pagedAttention),
            op("kiln.SlidingWindowDecode", Set.of("scale", "softcap"), OnnxOps::slidingWindowDecode));

    /** ONNX BitShift: direction LEFT or RIGHT (of unsigned types, so the right shift is logical). */
    private static Tensor bitShift(OnnxNode n) throws UnsupportedCaseException {
        String direction = n.attributes().string("direction", null);
        return switch (direction == null ? "" : direction) {
            case "LEFT" -> n.input(0).bitwiseLeftShift(n.input(1));
            case "RIGHT" -> n.input(0).bitwiseRightShift(n.input(1));
            default -> throw new UnsupportedCaseException("BitShift needs direction LEFT or RIGHT, got " + direction);
        };
    }

    /** Ops that update tensors in place: traced code runs them at a graph break, which the fullGraph compiles of the runner refuse. */
    private static final Set<String> EAGER_ONLY = Set.of("kiln.ReshapeAndCache");

    /** Whether {@code op} runs eagerly only (it updates its inputs in place). */
    public static boolean isEagerOnly(String op) { return EAGER_ONLY.contains(op); }

    /** The ONNX op types with a mapping, sorted. */
    public static Set<String> supportedOps() { return new TreeSet<>(OPS.keySet()); }

    /**
     * Runs a node with Kiln. Throws {@link UnsupportedCaseException} for an op or attribute
     * without a mapping; errors from Kiln itself propagate.
     */
    public static List<Tensor> run(OnnxNode node) throws UnsupportedCaseException {
        Mapping m = OPS.get(node.op());
        if (m == null) throw new UnsupportedCaseException("op '" + node.op() + "' has no Kiln mapping");
        for (String a : node.attributes().names()) {
            if (!m.attributes().contains(a)) {
                throw new UnsupportedCaseException("attribute '" + a + "' of " + node.op() + " is not supported");
            }
        }
        return Arrays.asList(m.body().apply(node));
    }

    private static Map.Entry<String, Mapping> op(String name, SingleOutput body) {
        return op(name, Set.of(), body);
    }

    private static Map.Entry<String, Mapping> op(String name, Set<String> attributes, SingleOutput body) {
        return multi(name, attributes, n -> new Tensor[] {body.apply(n)});
    }

    private static Map.Entry<String, Mapping> multi(String name, Set<String> attributes, Body body) {
        return Map.entry(name, new Mapping(attributes, body));
    }

    // ---------------------------------------------------------------- attribute helpers

    private static int axis(OnnxNode n, int fallback) {
        return Math.toIntExact(n.attributes().integer("axis", fallback));
    }

    private static boolean flag(OnnxNode n, String name, boolean fallback) {
        return n.attributes().integer(name, fallback ? 1 : 0) != 0;
    }

    private static int[] ints(long[] values) {
        int[] out = new int[values.length];
        for (int i = 0; i < out.length; i++) out[i] = Math.toIntExact(values[i]);
        return out;
    }

    /** A list given as input {@code index} (newer opsets) or as attribute {@code name} (older ones); null when neither. */
    private static long[] inputOrAttribute(OnnxNode n, int index, String name) {
        return n.optional(index) != null ? n.integers(index) : n.attributes().integers(name);
    }

    // ---------------------------------------------------------------- mappings

    private static Tensor div(OnnxNode n) {
        Tensor a = n.input(0), b = n.input(1);
        // ONNX integer division truncates and keeps the type; Kiln's div is true division.
        boolean integral = !a.dtype().isFloatingPoint() && !b.dtype().isFloatingPoint();
        return integral ? a.div(b, Tensor.RoundingMode.TRUNC) : a.div(b);
    }

    /** Outputs the updated caches; the case's own cache inputs are copied first and stay unchanged. */
    private static Tensor[] reshapeAndCache(OnnxNode n) {
        Tensor keyCache = n.input(2).copy(), valueCache = n.input(3).copy();
        Serving.reshapeAndCache(n.input(0), n.input(1), keyCache, valueCache, n.input(4));
        return new Tensor[] {keyCache, valueCache};
    }

    private static double attentionScale(OnnxNode n) {
        return n.attributes().real("scale", 1 / Math.sqrt(n.input(0).size(-1)));
    }

    private static Tensor pagedAttention(OnnxNode n) {
        return Serving.pagedAttention(n.input(0), n.input(1), n.input(2), n.input(3), n.input(4), n.input(5),
                attentionScale(n), flag(n, "causal", true), Math.toIntExact(n.attributes().integer("sliding_window", 0)),
                n.attributes().real("softcap", 0));
    }

    private static Tensor slidingWindowDecode(OnnxNode n) {
        return Serving.slidingWindowDecode(n.input(0), n.input(1), n.input(2), n.input(3), attentionScale(n),
                n.attributes().real("softcap", 0));
    }

    /**
     * ONNX Attention (opsets 23 and 24) on Kiln's attention kernel. 3-D inputs
     * [B, L, heads * size] are split into heads and the output merged back; past_key and
     * past_value are concatenated before the new keys and values and returned as
     * present_key and present_value; a mask shorter than the total key length is padded
     * with false / -inf; is_causal composes with the mask, aligned to the past length (row i
     * sees key j when j <= i + past), or per batch to nonpad_kv_seqlen[b] - L without a past;
     * nonpad_kv_seqlen masks the keys from that length on. Softcap applies to the scaled
     * scores before the mask, as the kernel does. Outputs Y, present_key, present_value; the
     * optional fourth output (qk_matmul_output) is not produced.
     */
    private static Tensor[] attention(OnnxNode n) throws UnsupportedCaseException {
        if (n.attributes().integer("qk_matmul_output_mode", 0) != 0) {
            throw new UnsupportedCaseException("Attention: qk_matmul_output_mode " + n.attributes().integer("qk_matmul_output_mode", 0)
                    + " (the qk_matmul_output output) is not supported: the kernel never materialises the scores");
        }
        Tensor q = n.input(0), k = n.input(1), v = n.input(2);
        // softmax_precision asks for at least that precision (ONNX type codes: 1 float, 10 float16, 16 bfloat16,
        // 11 double); the kernel's softmax runs in float32, or float64 for float64 inputs.
        long precision = n.attributes().integer("softmax_precision", 1);
        boolean covered = precision == 1 || precision == 10 || precision == 16 || precision == 11 && q.dtype() == DType.FLOAT64;
        if (!covered) {
            throw new UnsupportedCaseException("Attention: softmax_precision " + precision + " for " + q.dtype()
                    + " inputs: Kiln's softmax runs in float32 (float64 only for float64 inputs)");
        }
        Tensor mask = n.optional(3), pastKey = n.optional(4), pastValue = n.optional(5);
        boolean threeD = q.rank() == 3;
        if (threeD) {
            if (!n.attributes().has("q_num_heads") || !n.attributes().has("kv_num_heads")) {
                throw new KilnShapeException("Attention: 3-D inputs need the q_num_heads and kv_num_heads attributes");
            }
            int qHeads = Math.toIntExact(n.attributes().integer("q_num_heads", 0));
            int kvHeads = Math.toIntExact(n.attributes().integer("kv_num_heads", 0));
            q = splitHeads("Q", q, qHeads);
            k = splitHeads("K", k, kvHeads);
            v = splitHeads("V", v, kvHeads);
        } else if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4) {
            throw new KilnShapeException("Attention: Q, K and V must all be 3-D or all 4-D, got " + q.shape() + ", " + k.shape()
                    + ", " + v.shape());
        }
        if ((pastKey == null) != (pastValue == null)) {
            throw new KilnShapeException("Attention: past_key and past_value come together, got only "
                    + (pastKey == null ? "past_value" : "past_key"));
        }
        Tensor presentKey = pastKey == null ? k : Tensor.cat(2, pastKey, k);
        Tensor presentValue = pastValue == null ? v : Tensor.cat(2, pastValue, v);
        int batch = q.size(0), queries = q.size(2), keys = presentKey.size(2);
        int past = pastKey == null ? 0 : pastKey.size(2);
        if (mask != null) mask = padMask(mask, keys);
        boolean causal = flag(n, "is_causal", false);
        Attention.Options options = Attention.Options.DEFAULT
                .withScale(n.attributes().real("scale", 1 / Math.sqrt(q.size(-1))))
                .withSoftcap(n.attributes().real("softcap", 0));
        if (q.size(1) != presentKey.size(1)) options = options.withGqa();
        Tensor y;
        if (n.optional(6) == null) {
            y = Attention.attention(q, presentKey, presentValue, mask, causal ? options.withCausal(past) : options);
        } else {
            long[] lengths = n.integers(6);
            if (lengths.length != batch) {
                throw new KilnShapeException("Attention: nonpad_kv_seqlen must hold one length per batch entry (" + batch + "), got "
                        + n.input(6).shape());
            }
            // Each batch entry has its own padding, and without a past its own causal alignment.
            Tensor[] rows = new Tensor[batch];
            for (int b = 0; b < batch; b++) {
                Tensor valid = Tensor.arange(keys).lt((double) lengths[b]).reshape(1, 1, 1, keys);
                Tensor m = mask == null ? null : mask.rank() == 4 && mask.size(0) == batch ? mask.slice(0, b, b + 1) : mask;
                Tensor combined = m == null ? valid
                        : m.dtype() == DType.BOOL ? m.logicalAnd(valid)
                        : Tensor.where(valid, m, Tensor.full(Double.NEGATIVE_INFINITY, m.dtype(), 1));
                long offset = past > 0 ? past : lengths[b] - queries;
                Attention.Options o = causal ? options.withCausal(offset) : options;
                rows[b] = Attention.attention(q.slice(0, b, b + 1), presentKey.slice(0, b, b + 1), presentValue.slice(0, b, b + 1),
                        combined, o);
            }
            y = batch == 1 ? rows[0] : Tensor.cat(0, rows);
        }
        if (threeD) y = y.permute(0, 2, 1, 3).reshape(batch, queries, y.size(1) * y.size(3));
        return new Tensor[] {y, presentKey, presentValue};
    }

    /** [B, L, heads * size] to [B, heads, L, size]. */
    private static Tensor splitHeads(String name, Tensor x, int heads) {
        if (heads <= 0 || x.size(2) % heads != 0) {
            throw new KilnShapeException("Attention: " + name + " of shape " + x.shape() + " does not split into " + heads + " heads");
        }
        return x.reshape(x.size(0), x.size(1), heads, x.size(2) / heads).permute(0, 2, 1, 3);
    }

    /** A mask shorter than the total key length is padded with false (bool) or -inf (float), as ONNX specifies. */
    private static Tensor padMask(Tensor mask, int keys) {
        int have = mask.size(-1);
        if (have > keys) {
            throw new KilnShapeException("Attention: attn_mask of shape " + mask.shape() + " is longer than the total key length " + keys);
        }
        if (have == keys) return mask;
        int[] padShape = mask.shape().with(-1, keys - have).dims();
        Tensor pad = mask.dtype() == DType.BOOL ? Tensor.zeros(DType.BOOL, padShape)
                : Tensor.full(Double.NEGATIVE_INFINITY, mask.dtype(), padShape);
        return Tensor.cat(mask.rank() - 1, mask, pad);
    }

    private static Tensor swish(OnnxNode n) {
        Tensor x = n.input(0);
        double alpha = n.attributes().real("alpha", 1.0);
        return alpha == 1.0 ? x.silu() : x.mul(x.mul(alpha).sigmoid());
    }

    private static Tensor clip(OnnxNode n) {
        // Opset 11+ passes the bounds as optional inputs; opset 6 as attributes.
        double lo = n.optional(1) != null ? n.scalar(1) : n.attributes().real("min", Double.NEGATIVE_INFINITY);
        double hi = n.optional(2) != null ? n.scalar(2) : n.attributes().real("max", Double.POSITIVE_INFINITY);
        return n.input(0).clamp(lo, hi);
    }

    private static Tensor gemm(OnnxNode n) {
        Tensor a = flag(n, "transA", false) ? n.input(0).mT() : n.input(0);
        Tensor b = flag(n, "transB", false) ? n.input(1).mT() : n.input(1);
        Tensor c = n.optional(2);
        double alpha = n.attributes().real("alpha", 1.0), beta = n.attributes().real("beta", 1.0);
        Tensor y = a.matmul(b);
        if (alpha != 1.0) y = y.mul(alpha);
        if (c != null) y = y.add(beta == 1.0 ? c : c.mul(beta));
        return y;
    }

    /** The dtype ONNX's {@code stash_type} (a TensorProto element type) asks statistics to be computed in. */
    private static DType stashType(OnnxNode n) throws UnsupportedCaseException {
        long code = n.attributes().integer("stash_type", 1);
        return switch ((int) code) {
            case 1 -> DType.FLOAT32;
            case 10 -> DType.FLOAT16;
            case 11 -> DType.FLOAT64;
            case 16 -> DType.BFLOAT16;
            default -> throw new UnsupportedCaseException(n.op() + ": stash_type " + code + " is not a floating-point type Kiln has");
        };
    }

    private static Tensor castOrNull(Tensor t, DType dtype) {
        return t == null ? null : t.to(dtype);
    }

    /** Outputs Y, Mean and InvStdDev; the statistics have the stash type, Y the input's type. */
    private static Tensor[] layerNorm(OnnxNode n) throws UnsupportedCaseException {
        Tensor x = n.input(0);
        DType stash = stashType(n);
        Tensor[] out = F.layerNormWithStats(x.to(stash), axis(n, -1), n.input(1).to(stash), castOrNull(n.optional(2), stash),
                n.attributes().real("epsilon", 1e-5));
        return new Tensor[] {out[0].to(x.dtype()), out[1], out[2]};
    }

    private static Tensor rmsNorm(OnnxNode n) throws UnsupportedCaseException {
        Tensor x = n.input(0);
        DType stash = stashType(n);
        return F.rmsNormAxis(x.to(stash), axis(n, -1), n.input(1).to(stash), n.attributes().real("epsilon", 1e-5)).to(x.dtype());
    }

    private static Tensor reduce(OnnxNode n, Reduction r) {
        Tensor x = n.input(0);
        long[] axes = inputOrAttribute(n, 1, "axes");
        int[] dims;
        if (axes == null || axes.length == 0) {
            // No axes reduces everything, unless noop_with_empty_axes asks for a reduction over no axes.
            dims = flag(n, "noop_with_empty_axes", false) ? new int[0] : allDims(x.rank());
        } else {
            dims = ints(axes);
        }
        // ONNX reductions keep the input type; Kiln's integer sums widen to int64 as PyTorch's do.
        return r.apply(x, dims, flag(n, "keepdims", true)).to(x.dtype());
    }

    private static int[] allDims(int rank) {
        int[] d = new int[rank];
        for (int i = 0; i < rank; i++) d[i] = i;
        return d;
    }

    private static Tensor trilu(OnnxNode n) {
        long k = n.optional(1) != null ? n.integer(1) : 0;
        return flag(n, "upper", true) ? n.input(0).triu(k) : n.input(0).tril(k);
    }

    private static Tensor concat(OnnxNode n) {
        if (!n.attributes().has("axis")) throw new IllegalArgumentException("Concat: the attribute 'axis' is required");
        return Tensor.cat(axis(n, 0), n.inputs().toArray(Tensor[]::new));
    }

    private static Tensor transpose(OnnxNode n) {
        Tensor x = n.input(0);
        long[] perm = n.attributes().integers("perm");
        // Without perm (or with an empty one, as ONNX's reference implementation reads it) the dimensions are reversed.
        if (perm == null || perm.length == 0) {
            int[] reversed = new int[x.rank()];
            for (int i = 0; i < reversed.length; i++) reversed[i] = x.rank() - 1 - i;
            return x.permute(reversed);
        }
        return x.permute(ints(perm));
    }

    private static Tensor reshape(OnnxNode n) {
        Tensor x = n.input(0);
        long[] shape = n.integers(1);
        boolean allowZero = flag(n, "allowzero", false);
        int[] dims = new int[shape.length];
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == 0 && !allowZero) {
                // A 0 copies the input's dimension at the same position.
                if (i >= x.rank()) {
                    throw new KilnShapeException("Reshape: shape " + Arrays.toString(shape) + " has 0 at position " + i
                            + ", but the input " + x.shape() + " has no dimension " + i + " to copy");
                }
                dims[i] = x.size(i);
            } else {
                dims[i] = Math.toIntExact(shape[i]);
            }
        }
        return x.reshape(dims);
    }

    private static Tensor slice(OnnxNode n) {
        Tensor x = n.input(0);
        long[] starts = inputOrAttribute(n, 1, "starts"), ends = inputOrAttribute(n, 2, "ends");
        if (starts == null || ends == null) throw new IllegalArgumentException("Slice: starts and ends are required");
        long[] axes = inputOrAttribute(n, 3, "axes");
        long[] steps = n.optional(4) != null ? n.integers(4) : null;
        if (axes == null) axes = Arrays.stream(allDims(starts.length)).asLongStream().toArray();
        if (steps == null) {
            steps = new long[starts.length];
            Arrays.fill(steps, 1);
        }
        if (ends.length != starts.length || axes.length != starts.length || steps.length != starts.length) {
            throw new KilnShapeException("Slice: starts, ends, axes and steps must have one length, got " + starts.length + ", "
                    + ends.length + ", " + axes.length + ", " + steps.length);
        }
        for (int i = 0; i < starts.length; i++) {
            int axis = Shape.normalizeDim(Math.toIntExact(axes[i]), x.rank(), "Slice", x.shape());
            long start = starts[i];
            // ONNX clamps a start before the beginning to 0 also when stepping backwards, where Python's
            // clamping (Kiln's) would give an empty range.
            if (steps[i] < 0 && start < -(long) x.size(axis)) start = 0;
            x = x.slice(axis, start, ends[i], steps[i]);
        }
        return x;
    }

    private static Tensor einsum(OnnxNode n) {
        String equation = n.attributes().string("equation", null);
        if (equation == null) throw new IllegalArgumentException("Einsum: the attribute 'equation' is required");
        return F.einsum(equation, n.inputs().toArray(Tensor[]::new));
    }
}
