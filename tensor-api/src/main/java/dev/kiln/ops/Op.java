package dev.kiln.ops;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Shape;

import java.util.ArrayList;
import java.util.List;

/**
 * The op registry: every operation Kiln knows, as an immutable value holding its
 * attributes, with its shape inference and dtype rules. Eager execution, the
 * tracer and lowering all work from these values, so each rule exists once.
 *
 * <p>Attributes are stored resolved (dimensions non-negative, defaults filled in),
 * so two equal computations are equal values.
 */
public sealed interface Op {

    /** The op's name as it appears in messages and graph dumps. */
    String name();

    /** Output dtypes and shapes for these inputs; throws a message naming the op, the shapes and the dimension. */
    List<TensorMeta> infer(List<TensorMeta> inputs);

    // ---------------------------------------------------------------- pointwise

    record Unary(UnaryFn fn) implements Op {
        public String name() { return fn.opName(); }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            return List.of(new TensorMeta(fn.resultType(in.get(0).dtype()), in.get(0).shape()));
        }
    }

    record Binary(BinaryFn fn) implements Op {
        public String name() { return fn.opName(); }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 2);
            Shape s = Shape.broadcast(name(), in.get(0).shape(), in.get(1).shape());
            return List.of(new TensorMeta(fn.resultType(DType.promote(in.get(0).dtype(), in.get(1).dtype())), s));
        }

        /** The dtype both operands are converted to before {@link BinaryFn#apply}. */
        public DType computeType(DType a, DType b) { return fn.computeType(DType.promote(a, b)); }
    }

    /**
     * A binary op with a host scalar operand, promoted as PyTorch promotes a Python
     * number: it never widens a tensor of the same category (float16 + 2.5 stays float16),
     * but a float scalar makes an integer or bool tensor float32 and an integer scalar makes a bool tensor int64
     * ({@code torch.tensor([True]) + 1} is {@code tensor([2])}).
     */
    record BinaryScalar(BinaryFn fn, double scalar, boolean integralScalar, boolean scalarFirst) implements Op {
        public String name() { return fn.opName(); }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            return List.of(new TensorMeta(fn.resultType(operandType(in.get(0).dtype())), in.get(0).shape()));
        }

        public DType operandType(DType tensor) {
            if (!integralScalar && !tensor.isFloatingPoint()) return DType.FLOAT32;
            if (integralScalar && tensor == DType.BOOL) return DType.INT64;
            return tensor;
        }

        public DType computeType(DType tensor) { return fn.computeType(operandType(tensor)); }
    }

    /** {@code min(max(x, min), max)}; absent bounds are infinite. With min > max every element becomes max. */
    record Clamp(double min, double max) implements Op {
        public String name() { return "clamp"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            if (in.get(0).dtype() == DType.BOOL) throw new KilnTypeException("clamp: not supported for bool tensors");
            return List.of(in.get(0));
        }
    }

    /** {@code where(condition, x, y)}: x where the bool condition holds, else y. */
    record Where() implements Op {
        public String name() { return "where"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 3);
            if (in.get(0).dtype() != DType.BOOL) {
                throw new KilnTypeException("where: condition must be bool, got " + in.get(0).dtype());
            }
            Shape s = Shape.broadcast(name(), in.get(0).shape(), in.get(1).shape(), in.get(2).shape());
            return List.of(new TensorMeta(DType.promote(in.get(1).dtype(), in.get(2).dtype()), s));
        }
    }

    /** Conversion to another dtype: floats to integers truncate toward zero, anything to bool is "non-zero". */
    record Cast(DType to) implements Op {
        public String name() { return "to_" + to; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            return List.of(new TensorMeta(to, in.get(0).shape()));
        }
    }

    /** A copy into fresh contiguous memory. */
    record Contiguous() implements Op {
        public String name() { return "contiguous"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            return List.of(in.get(0));
        }
    }

    // ---------------------------------------------------------------- creation

    /** A tensor of one repeated value. */
    record Full(Shape shape, DType dtype, double value) implements Op {
        public String name() { return "full"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 0);
            return List.of(new TensorMeta(dtype, shape));
        }
    }

    /**
     * {@code start + i * step} for i in [0, length). An integer dtype with whole start and step
     * counts in long arithmetic from {@code exactStart} and {@code exactStep}, exact at any
     * magnitude (start and step then hold their nearest doubles); otherwise those two are 0
     * and the doubles are used.
     */
    record Arange(double start, double step, int length, DType dtype, long exactStart, long exactStep) implements Op {
        public Arange {
            boolean integral = integral(start, step, dtype);
            if (integral ? (double) exactStart != start || (double) exactStep != step : exactStart != 0 || exactStep != 0) {
                throw new IllegalArgumentException("arange: exact start " + exactStart + " and step " + exactStep
                        + " do not round to start " + start + " and step " + step + " for " + dtype);
            }
        }

        /** From double bounds: whole values are exact up to 2^53 only; see {@link #ofLongs}. */
        public Arange(double start, double step, int length, DType dtype) {
            this(start, step, length, dtype, integral(start, step, dtype) ? (long) start : 0,
                    integral(start, step, dtype) ? (long) step : 0);
        }

        /** From integer bounds, exact for integer dtypes at any magnitude. */
        public static Arange ofLongs(long start, long step, int length, DType dtype) {
            return dtype.isInteger() ? new Arange(start, step, length, dtype, start, step) : new Arange(start, step, length, dtype);
        }

        /** Whether the values are computed in long arithmetic from the exact start and step. */
        public boolean integral() { return integral(start, step, dtype); }

        private static boolean integral(double start, double step, DType dtype) {
            // Up to 2^63 inclusive: the doubles nearest the largest longs round up to it.
            return dtype.isInteger() && start == Math.rint(start) && step == Math.rint(step)
                    && Math.abs(start) <= 0x1p63 && Math.abs(step) <= 0x1p63;
        }

        public String name() { return "arange"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 0);
            return List.of(new TensorMeta(dtype, Shape.of(length)));
        }
    }

    // ---------------------------------------------------------------- reductions and scans

    /** Reduces the given (resolved, sorted, distinct) dimensions. */
    record Reduce(ReduceFn fn, List<Integer> dims, boolean keepdim) implements Op {
        public Reduce {
            dims = List.copyOf(dims);
        }

        public String name() { return fn.opName(); }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            TensorMeta x = in.get(0);
            int[] d = x.shape().dims();
            boolean[] reduced = new boolean[d.length];
            int previous = -1;
            for (int dim : dims) {
                resolvedDim(this, dim, x.shape());
                if (dim <= previous) {
                    throw new KilnShapeException(name() + ": dimensions " + dims + " must be sorted and distinct (resolved form)"
                            + " for shape " + x.shape());
                }
                previous = dim;
                if (d.length > 0) reduced[dim] = true;
            }
            return List.of(new TensorMeta(fn.resultType(x.dtype()), reducedShape(d, reduced, keepdim)));
        }
    }

    /** Index of the maximum (or minimum) along one dimension; ties take the first index unless {@code lastIndex}. */
    record ArgReduce(boolean max, int dim, boolean keepdim, boolean lastIndex) implements Op {
        public String name() { return max ? "argmax" : "argmin"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            TensorMeta x = in.get(0);
            int[] d = x.shape().dims();
            resolvedDim(this, dim, x.shape());
            if (d.length > 0 && d[dim] == 0) {
                throw new KilnShapeException(name() + ": cannot reduce dimension " + dim + " of size 0 in shape " + x.shape());
            }
            boolean[] reduced = new boolean[d.length];
            if (d.length > 0) reduced[dim] = true;
            return List.of(new TensorMeta(DType.INT64, reducedShape(d, reduced, keepdim)));
        }
    }

    /** Cumulative sum along a dimension; {@code exclusive} leaves out the element itself, {@code reverse} runs from the end. */
    record CumSum(int dim, boolean exclusive, boolean reverse) implements Op {
        public String name() { return "cumsum"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            TensorMeta x = in.get(0);
            resolvedDim(this, dim, x.shape());
            DType t = x.dtype().isFloatingPoint() || x.dtype() == DType.UINT64 ? x.dtype() : DType.INT64;
            return List.of(new TensorMeta(t, x.shape()));
        }
    }

    /** softmax (or log_softmax) along a dimension. */
    record Softmax(int dim, boolean log) implements Op {
        public String name() { return log ? "log_softmax" : "softmax"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            TensorMeta x = in.get(0);
            requireFloat(this, x);
            resolvedDim(this, dim, x.shape());
            return List.of(x);
        }
    }

    /**
     * Layer normalisation over dimensions {@code axis..rank-1}. Inputs: x, then weight
     * and bias when present, each shaped as the normalised dimensions. Outputs: y,
     * mean and inverse standard deviation (the latter two shaped as x with the
     * normalised dimensions set to 1, as ONNX defines them).
     */
    record LayerNorm(int axis, double eps, boolean hasWeight, boolean hasBias) implements Op {
        public String name() { return "layer_norm"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1 + (hasWeight ? 1 : 0) + (hasBias ? 1 : 0));
            TensorMeta x = in.get(0);
            requireFloat(this, x);
            checkNormParams(this, in, axis);
            Shape stat = statShape(x.shape(), axis);
            return List.of(x, new TensorMeta(x.dtype(), stat), new TensorMeta(x.dtype(), stat));
        }
    }

    /** RMS normalisation over dimensions {@code axis..rank-1}, with an optional weight. */
    record RmsNorm(int axis, double eps, boolean hasWeight) implements Op {
        public String name() { return "rms_norm"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, hasWeight ? 2 : 1);
            TensorMeta x = in.get(0);
            requireFloat(this, x);
            checkNormParams(this, in, axis);
            return List.of(x);
        }
    }

    // ---------------------------------------------------------------- linear algebra

    /** Matrix product with PyTorch's rules: 1-D operands are promoted and the added dimension removed, batch dimensions broadcast. */
    record MatMul() implements Op {
        public String name() { return "matmul"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 2);
            TensorMeta a = in.get(0), b = in.get(1);
            if (a.shape().rank() == 0 || b.shape().rank() == 0) {
                throw new KilnShapeException("matmul: both arguments need at least 1 dimension, got shapes "
                        + a.shape() + " and " + b.shape());
            }
            if (a.dtype() != b.dtype()) {
                throw new KilnTypeException("matmul: expected both operands to have the same dtype, got "
                        + a.dtype() + " and " + b.dtype());
            }
            if (a.dtype() == DType.BOOL) throw new KilnTypeException("matmul: not supported for bool tensors");
            int[] ad = a.shape().dims(), bd = b.shape().dims();
            int k1 = ad[ad.length - 1];
            int kDimB = bd.length == 1 ? 0 : bd.length - 2;
            int k2 = bd[kDimB];
            if (k1 != k2) {
                throw new KilnShapeException("matmul: shapes " + a.shape() + " and " + b.shape() + " cannot multiply: dimension "
                        + (ad.length - 1) + " of the left (" + k1 + ") must equal dimension " + kDimB + " of the right (" + k2 + ")");
            }
            Shape batchA = Shape.of(java.util.Arrays.copyOf(ad, Math.max(ad.length - 2, 0)));
            Shape batchB = Shape.of(java.util.Arrays.copyOf(bd, Math.max(bd.length - 2, 0)));
            int[] batch = Shape.broadcast(name(), batchA, batchB).dims();
            List<Integer> out = new ArrayList<>();
            for (int d : batch) out.add(d);
            if (ad.length >= 2) out.add(ad[ad.length - 2]);
            if (bd.length >= 2) out.add(bd[bd.length - 1]);
            return List.of(new TensorMeta(a.dtype(), Shape.of(out.stream().mapToInt(Integer::intValue).toArray())));
        }
    }

    /**
     * Rotary position embedding of the last dimension (size D, even). Inputs: x, cos, sin,
     * where cos and sin broadcast to x's shape with the last dimension D/2. Pairs are
     * (i, i + D/2) in half-split form and (2i, 2i+1) in interleaved form; each pair
     * (a, b) becomes (a cos - b sin, b cos + a sin). cos and sin share one floating-point
     * dtype, x's or another (float32 tables for a bfloat16 x); the result has x's dtype.
     */
    record Rope(boolean interleaved) implements Op {
        public String name() { return "rope"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 3);
            TensorMeta x = in.get(0);
            requireFloat(this, x);
            if (x.shape().rank() == 0 || x.shape().dim(-1) % 2 != 0) {
                throw new KilnShapeException("rope: the last dimension of x must be even, got shape " + x.shape());
            }
            TensorMeta cos = in.get(1), sin = in.get(2);
            // Tables may be wider than x (float32 tables for a bfloat16 x are common), but must be
            // floating-point and of one dtype, so cos and sin are read at the same precision.
            if (!cos.dtype().isFloatingPoint() || cos.dtype() != sin.dtype()) {
                throw new KilnTypeException("rope: cos and sin must be floating-point tensors of one dtype (x is "
                        + x.dtype() + x.shape() + "), got cos " + cos.dtype() + cos.shape() + " and sin " + sin.dtype() + sin.shape());
            }
            Shape half = x.shape().with(-1, x.shape().dim(-1) / 2);
            for (int i = 1; i <= 2; i++) {
                Shape b = Shape.broadcast(name(), half, in.get(i).shape());
                if (!b.equals(half)) {
                    throw new KilnShapeException("rope: " + (i == 1 ? "cos" : "sin") + " of shape " + in.get(i).shape()
                            + " does not broadcast to " + half + " (x " + x.shape() + " with the last dimension halved)");
                }
            }
            return List.of(x);
        }
    }

    /**
     * Scaled dot-product attention with PyTorch's semantics. Inputs q [..., L, E],
     * k [..., S, E], v [..., S, Ev] and, when {@code hasMask}, a bool mask (true takes
     * part) or a float mask (added) broadcastable to [..., L, S]. With {@code enableGqa},
     * dimension -3 of q may be a multiple of that of k and v.
     */
    record ScaledDotProductAttention(boolean causal, double scale, boolean enableGqa, boolean hasMask) implements Op {
        public String name() { return "scaled_dot_product_attention"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            return inferAttention(this, in, causal, enableGqa, hasMask, true);
        }
    }

    /**
     * Attention below scaled_dot_product_attention, with the kernel's options: a mask and
     * causal masking together (both apply), a causal offset (query row i sees key j when
     * {@code j <= i + causalOffset}; 0 is top-left alignment, {@code S - L} bottom-right),
     * logit soft-capping ({@code softcap * tanh(s / softcap)} on the scaled scores, before
     * the mask; 0 for none) and a key/value partition size (keys per split-KV partition,
     * merged exactly through their log-sum-exp; 0 lets the device choose). Inputs and GQA
     * as {@link ScaledDotProductAttention}. With {@code transposedOutput} the output's head and
     * query dimensions are swapped, [..., L, H, Ev] instead of [..., H, L, Ev], as a
     * {@code permute} of the usual output would lay them out: the kernel writes each query
     * row where the heads are concatenated for the output projection, which then reads it in place.
     */
    record Attention(boolean causal, long causalOffset, double scale, double softcap, boolean enableGqa, boolean hasMask,
                     int partitionSize, boolean transposedOutput) implements Op {
        public String name() { return "attention"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            if (!(softcap >= 0) || Double.isInfinite(softcap)) {
                throw new KilnShapeException(name() + ": softcap must be finite and >= 0 (0 for none), got " + softcap);
            }
            if (partitionSize < 0) {
                throw new KilnShapeException(name() + ": partition size must be >= 0 (0 lets the device choose), got " + partitionSize);
            }
            List<TensorMeta> out = inferAttention(this, in, causal, enableGqa, hasMask, false);
            if (!transposedOutput) return out;
            Shape shape = out.getFirst().shape();
            if (shape.rank() < 3) {
                throw new KilnShapeException(name() + ": a transposed output swaps the head and query dimensions, but the output "
                        + shape + " has no head dimension");
            }
            int[] dims = shape.dims();
            int heads = dims[dims.length - 3];
            dims[dims.length - 3] = dims[dims.length - 2];
            dims[dims.length - 2] = heads;
            return List.of(new TensorMeta(out.getFirst().dtype(), Shape.of(dims)));
        }
    }

    private static List<TensorMeta> inferAttention(Op op, List<TensorMeta> in, boolean causal, boolean enableGqa,
                                                   boolean hasMask, boolean rejectMaskWithCausal) {
        arity(op, in, hasMask ? 4 : 3);
        TensorMeta q = in.get(0), k = in.get(1), v = in.get(2);
        for (TensorMeta t : List.of(q, k, v)) {
            requireFloat(op, t);
            if (t.shape().rank() < 2) {
                throw new KilnShapeException(op.name() + ": q, k and v need at least 2 dimensions, got "
                        + q.shape() + ", " + k.shape() + ", " + v.shape());
            }
        }
        if (q.dtype() != k.dtype() || q.dtype() != v.dtype()) {
            throw new KilnTypeException(op.name() + ": q, k and v must have one dtype, got "
                    + q.dtype() + ", " + k.dtype() + ", " + v.dtype());
        }
        if (q.shape().dim(-1) != k.shape().dim(-1)) {
            throw new KilnShapeException(op.name() + ": query shape " + q.shape() + " and key shape " + k.shape()
                    + " differ in dimension -1 (" + q.shape().dim(-1) + " vs " + k.shape().dim(-1) + ")");
        }
        if (k.shape().dim(-2) != v.shape().dim(-2)) {
            throw new KilnShapeException(op.name() + ": key shape " + k.shape() + " and value shape " + v.shape()
                    + " differ in dimension -2 (" + k.shape().dim(-2) + " vs " + v.shape().dim(-2) + ")");
        }
        if (!k.shape().with(-1, 1).equals(v.shape().with(-1, 1))) {
            throw new KilnShapeException(op.name() + ": key shape " + k.shape() + " and value shape " + v.shape()
                    + " must agree in every dimension but the last");
        }
        int[] qd = q.shape().dims(), kd = k.shape().dims();
        int[] qBatch = java.util.Arrays.copyOf(qd, qd.length - 2), kBatch = java.util.Arrays.copyOf(kd, kd.length - 2);
        if (enableGqa && qBatch.length >= 1 && kBatch.length >= 1) {
            int hq = qBatch[qBatch.length - 1], hkv = kBatch[kBatch.length - 1];
            if (hkv == 0 || hq % hkv != 0) {
                throw new KilnShapeException(op.name() + ": with enable_gqa the query heads (dimension -3: " + hq
                        + ") must be a multiple of the key/value heads (" + hkv + ")");
            }
            kBatch[kBatch.length - 1] = hq;
        }
        int[] batch = Shape.broadcast(op.name(), Shape.of(qBatch), Shape.of(kBatch)).dims();
        int[] out = java.util.Arrays.copyOf(batch, batch.length + 2);
        out[batch.length] = qd[qd.length - 2];
        out[batch.length + 1] = v.shape().dim(-1);
        if (hasMask) {
            TensorMeta m = in.get(3);
            if (causal && rejectMaskWithCausal) {
                throw new KilnShapeException(op.name() + ": attn_mask and is_causal cannot both be set"
                        + " (PyTorch raises the same); fold the causal mask into attn_mask");
            }
            if (m.dtype() != DType.BOOL && m.dtype() != q.dtype()) {
                throw new KilnTypeException(op.name() + ": attn_mask must be bool or of the query dtype " + q.dtype()
                        + ", got " + m.dtype());
            }
            int[] scores = java.util.Arrays.copyOf(batch, batch.length + 2);
            scores[batch.length] = qd[qd.length - 2];
            scores[batch.length + 1] = kd[kd.length - 2];
            Shape target = Shape.of(scores);
            Shape b = Shape.broadcast(op.name(), target, m.shape());
            if (!b.equals(target)) {
                throw new KilnShapeException(op.name() + ": attn_mask of shape " + m.shape()
                        + " does not broadcast to the score shape " + target);
            }
        }
        return List.of(new TensorMeta(q.dtype(), Shape.of(out)));
    }

    // ---------------------------------------------------------------- serving attention

    /**
     * {@code dev.kiln.nn.Serving.pagedAttention}: packed query rows [T, H, D] over a paged KV
     * cache [NB, BS, Hkv, D]. Inputs: query, keyCache, valueCache, blockTables [S, MAXB],
     * contextLens [S], queryStartLoc [S + 1] (index tensors int32 or int64, read when the op
     * runs, so a compiled graph serves any block table of the same shapes).
     */
    record PagedAttention(double scale, boolean causal, int slidingWindow, double softcap) implements Op {
        public String name() { return "paged_attention"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 6);
            String op = "pagedAttention";
            TensorMeta query = in.get(0), keys = in.get(1), tables = in.get(3);
            ServingShapes.attentionOperands(op, query, "[T, H, D]", "keyCache", keys, "valueCache", in.get(2), "[NB, BS, Hkv, D]");
            ServingShapes.heads(op, query, keys);
            ServingShapes.params(op, scale, slidingWindow, softcap);
            ServingShapes.integral(op, "blockTables", tables);
            if (tables.shape().rank() != 2) {
                throw new KilnShapeException(op + ": blockTables must be [S, MAXB], got " + tables.shape());
            }
            int sequences = tables.shape().dim(0);
            ServingShapes.vector(op, "contextLens", in.get(4), sequences, "the sequence count S of blockTables " + tables.shape());
            ServingShapes.vector(op, "queryStartLoc", in.get(5), sequences + 1,
                    "S + 1 for the sequence count S of blockTables " + tables.shape());
            return List.of(query);
        }
    }

    /**
     * An op that updates some of its inputs in place: its output {@code k} is input
     * {@code overwrites().get(k)} after the update, in the same memory. Eager execution hands
     * those inputs to the kernel as its outputs; a trace records the op and reads the
     * updated value from then on; compiled programs give the outputs the inputs' memory.
     */
    sealed interface InPlace extends Op permits ReshapeAndCache {
        List<Integer> overwrites();
    }

    /**
     * {@code dev.kiln.nn.Serving.reshapeAndCache}: inputs key and value [T, Hkv, D], the caches
     * [NB, BS, Hkv, D] it writes in place, and slotMapping [T] (int32 or int64); outputs the
     * two caches.
     */
    record ReshapeAndCache() implements InPlace {
        private static final List<Integer> CACHES = List.of(2, 3);

        public String name() { return "reshape_and_cache"; }

        public List<Integer> overwrites() { return CACHES; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 5);
            String op = "reshapeAndCache";
            TensorMeta key = in.get(0), keyCache = in.get(2);
            ServingShapes.floating(op, "key", key);
            ServingShapes.floating(op, "value", in.get(1));
            ServingShapes.floating(op, "keyCache", keyCache);
            ServingShapes.floating(op, "valueCache", in.get(3));
            ServingShapes.rank(op, "key", key, 3, "[T, Hkv, D]");
            ServingShapes.sameShape(op, "value", in.get(1), "key", key);
            ServingShapes.rank(op, "keyCache", keyCache, 4, "[NB, BS, Hkv, D]");
            ServingShapes.sameShape(op, "valueCache", in.get(3), "keyCache", keyCache);
            for (int d = 1; d <= 2; d++) {
                if (key.shape().dim(d) != keyCache.shape().dim(d + 1)) {
                    throw new KilnShapeException(op + ": key " + key.shape() + " and keyCache " + keyCache.shape()
                            + " disagree in " + (d == 1 ? "the KV head count" : "the head size") + " (dimension " + d
                            + " of key, " + (d + 1) + " of the cache)");
                }
            }
            ServingShapes.vector(op, "slotMapping", in.get(4), key.shape().dim(0), "the token count T of key " + key.shape());
            return List.of(keyCache, in.get(3));
        }
    }

    /**
     * {@code dev.kiln.nn.Serving.slidingWindowDecode}: query [B, H, D] over per-sequence rings
     * [B, W, Hkv, D]; inputs query, keyRing, valueRing, positions [B] (int32 or int64).
     */
    record SlidingWindowDecode(double scale, double softcap) implements Op {
        public String name() { return "sliding_window_decode"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 4);
            String op = "slidingWindowDecode";
            TensorMeta query = in.get(0), ring = in.get(1);
            ServingShapes.attentionOperands(op, query, "[B, H, D]", "keyRing", ring, "valueRing", in.get(2), "[B, W, Hkv, D]");
            if (ring.shape().dim(0) != query.shape().dim(0)) {
                throw new KilnShapeException(op + ": keyRing " + ring.shape() + " has " + ring.shape().dim(0)
                        + " sequences in dimension 0, query " + query.shape() + " has " + query.shape().dim(0));
            }
            if (ring.shape().dim(1) == 0) {
                throw new KilnShapeException(op + ": the window W (dimension 1 of keyRing " + ring.shape() + ") is 0");
            }
            ServingShapes.heads(op, query, ring);
            ServingShapes.params(op, scale, 0, softcap);
            ServingShapes.vector(op, "positions", in.get(3), query.shape().dim(0), "the batch size B of query " + query.shape());
            return List.of(query);
        }
    }

    /**
     * {@code dev.kiln.nn.Serving.slidingWindowAttention}: query rows [T, H, D] over per-sequence
     * rings [B, R, Hkv, D]; inputs query, keyRing, valueRing, rowSequence [T] and positions [T]
     * (int32 or int64).
     */
    record SlidingWindowAttention(int window, double scale, double softcap) implements Op {
        public String name() { return "sliding_window_attention"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 5);
            String op = "slidingWindowAttention";
            TensorMeta query = in.get(0), ring = in.get(1);
            ServingShapes.attentionOperands(op, query, "[T, H, D]", "keyRing", ring, "valueRing", in.get(2), "[B, R, Hkv, D]");
            ServingShapes.heads(op, query, ring);
            ServingShapes.params(op, scale, window, softcap);
            if (window < 1 || window > ring.shape().dim(1)) {
                throw new KilnShapeException(op + ": window must be between 1 and the ring size R (dimension 1 of keyRing "
                        + ring.shape() + "), got " + window);
            }
            ServingShapes.vector(op, "rowSequence", in.get(3), query.shape().dim(0), "one per query row of " + query.shape());
            ServingShapes.vector(op, "positions", in.get(4), query.shape().dim(0), "one per query row of " + query.shape());
            return List.of(query);
        }
    }

    // ---------------------------------------------------------------- indexing and assembly

    /** Selects along {@code axis} by integer indices (negative ones count from the end): ONNX Gather, index_select, embedding. */
    record Gather(int axis) implements Op {
        public String name() { return "gather"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 2);
            TensorMeta data = in.get(0), idx = in.get(1);
            requireIndex(this, idx);
            int[] d = data.shape().dims(), id = idx.shape().dims();
            if (axis < 0 || axis >= d.length) {
                throw new KilnShapeException(name() + ": axis " + axis + " is out of range for shape " + data.shape());
            }
            int[] out = new int[d.length - 1 + id.length];
            System.arraycopy(d, 0, out, 0, axis);
            System.arraycopy(id, 0, out, axis, id.length);
            System.arraycopy(d, axis + 1, out, axis + id.length, d.length - axis - 1);
            return List.of(new TensorMeta(data.dtype(), Shape.of(out)));
        }
    }

    /** {@code out[i][j][k] = data[index[i][j][k]][j][k]} for axis 0, and so on: torch.gather, ONNX GatherElements. */
    record GatherElements(int axis) implements Op {
        public String name() { return "gather_elements"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 2);
            TensorMeta data = in.get(0), idx = in.get(1);
            requireIndex(this, idx);
            resolvedDim(this, axis, data.shape());
            if (data.shape().rank() != idx.shape().rank()) {
                throw new KilnShapeException(name() + ": index " + idx.shape() + " must have the rank of data " + data.shape());
            }
            for (int i = 0; i < data.shape().rank(); i++) {
                if (i != axis && idx.shape().dim(i) > data.shape().dim(i)) {
                    throw new KilnShapeException(name() + ": index " + idx.shape() + " is larger than data " + data.shape()
                            + " in dimension " + i + " (" + idx.shape().dim(i) + " vs " + data.shape().dim(i) + ")");
                }
            }
            return List.of(new TensorMeta(data.dtype(), idx.shape()));
        }
    }

    /** Joins tensors along an existing dimension; dtypes promote. */
    record Concat(int dim) implements Op {
        public String name() { return "concat"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            if (in.isEmpty()) throw new KilnShapeException("concat: expected at least one tensor");
            Shape first = in.get(0).shape();
            if (first.rank() == 0) throw new KilnShapeException("concat: zero-dimensional tensors cannot be concatenated");
            resolvedDim(this, dim, first);
            DType t = in.get(0).dtype();
            long total = 0;
            for (int i = 0; i < in.size(); i++) {
                Shape s = in.get(i).shape();
                if (s.rank() != first.rank()) {
                    throw new KilnShapeException("concat: tensor " + i + " has shape " + s + " but tensor 0 has shape "
                            + first + ": ranks differ");
                }
                for (int d = 0; d < s.rank(); d++) {
                    if (d != dim && s.dim(d) != first.dim(d)) {
                        throw new KilnShapeException("concat: tensor " + i + " has shape " + s + " but tensor 0 has shape "
                                + first + ": dimension " + d + " is " + s.dim(d) + " vs " + first.dim(d));
                    }
                }
                total += s.dim(dim);
                t = DType.promote(t, in.get(i).dtype());
            }
            return List.of(new TensorMeta(t, first.with(dim, Math.toIntExact(total))));
        }
    }

    /** Keeps the lower ({@code upper == false}) or upper triangle of the last two dimensions, relative to {@code diagonal}. */
    record Triangle(boolean upper, long diagonal) implements Op {
        public String name() { return upper ? "triu" : "tril"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            if (in.get(0).shape().rank() < 2) {
                throw new KilnShapeException(name() + ": input needs at least 2 dimensions, got shape " + in.get(0).shape());
            }
            return List.of(in.get(0));
        }
    }

    /** The k largest (or smallest) elements along a dimension, with their int64 indices. */
    record TopK(int k, int dim, boolean largest, boolean sorted) implements Op {
        public String name() { return "topk"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            TensorMeta x = in.get(0);
            resolvedDim(this, dim, x.shape());
            int size = x.shape().rank() == 0 ? 1 : x.shape().dim(dim);
            if (k < 0 || k > size) {
                throw new KilnShapeException("topk: k (" + k + ") is out of range for dimension " + dim
                        + " of size " + size + " in shape " + x.shape());
            }
            Shape s = x.shape().rank() == 0 ? x.shape() : x.shape().with(dim, k);
            return List.of(new TensorMeta(x.dtype(), s), new TensorMeta(DType.INT64, s));
        }
    }

    // ---------------------------------------------------------------- views

    /**
     * Ops that only reinterpret existing memory. {@link #view} gives the new layout,
     * or null when the input layout cannot be viewed that way (a reshape of a
     * non-contiguous tensor), in which case eager mode copies first.
     */
    sealed interface ViewOp extends Op permits Reshape, Permute, Slice, Expand, Diagonal {
        Layout view(Layout in);
    }

    record Reshape(Shape shape) implements ViewOp {
        public String name() { return "reshape"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            if (in.get(0).shape().numel() != shape.numel()) {
                throw new KilnShapeException("reshape: shape " + shape + " is invalid for input of shape "
                        + in.get(0).shape() + " (" + in.get(0).shape().numel() + " elements)");
            }
            return List.of(new TensorMeta(in.get(0).dtype(), shape));
        }

        public Layout view(Layout in) {
            long[] strides = ViewMath.reshapeStrides(in.shape().dims(), in.strides(), shape.dims());
            return strides == null ? null : new Layout(shape, strides, in.offset());
        }
    }

    record Permute(List<Integer> dims) implements ViewOp {
        public Permute {
            dims = List.copyOf(dims);
        }

        public String name() { return "permute"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            Shape s = in.get(0).shape();
            if (dims.size() != s.rank()) {
                throw new KilnShapeException("permute: " + dims + " has " + dims.size() + " dimensions but the input shape "
                        + s + " has " + s.rank());
            }
            boolean[] seen = new boolean[s.rank()];
            int[] out = new int[s.rank()];
            for (int i = 0; i < dims.size(); i++) {
                int d = dims.get(i);
                if (d < 0 || d >= s.rank() || seen[d]) {
                    throw new KilnShapeException("permute: " + dims + " is not a permutation of the dimensions of " + s);
                }
                seen[d] = true;
                out[i] = s.dim(d);
            }
            return List.of(new TensorMeta(in.get(0).dtype(), Shape.of(out)));
        }

        public Layout view(Layout in) {
            int[] d = in.shape().dims();
            int[] out = new int[d.length];
            long[] st = new long[d.length];
            for (int i = 0; i < d.length; i++) {
                out[i] = d[dims.get(i)];
                st[i] = in.strides()[dims.get(i)];
            }
            return new Layout(Shape.of(out), st, in.offset());
        }
    }

    /** Elements {@code start, start + step, ...} ({@code length} of them) of one dimension; the step may be negative. */
    record Slice(int dim, long start, long step, int length) implements ViewOp {
        public String name() { return "slice"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            Shape s = in.get(0).shape();
            if (dim < 0 || dim >= s.rank()) {
                throw new KilnShapeException("slice: dimension " + dim + " is out of range for shape " + s);
            }
            if (step == 0) throw new KilnShapeException("slice: step cannot be zero");
            long last = start + (length - 1L) * step;
            if (length > 0 && (start < 0 || start >= s.dim(dim) || last < 0 || last >= s.dim(dim))) {
                throw new KilnShapeException("slice: elements " + start + " to " + last + " (step " + step
                        + ") are out of range for dimension " + dim + " of size " + s.dim(dim) + " in shape " + s);
            }
            return List.of(new TensorMeta(in.get(0).dtype(), s.with(dim, length)));
        }

        public Layout view(Layout in) {
            long[] st = in.strides().clone();
            long offset = in.offset() + (length > 0 ? start * st[dim] : 0);
            st[dim] *= step;
            return new Layout(in.shape().with(dim, length), st, offset);
        }
    }

    /** Broadcasts size-1 (or missing leading) dimensions to {@code shape} without copying. */
    record Expand(Shape shape) implements ViewOp {
        public String name() { return "expand"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            Shape s = in.get(0).shape();
            Shape b = Shape.broadcast(name(), s, shape);
            if (!b.equals(shape)) {
                throw new KilnShapeException("expand: shape " + s + " cannot be expanded to " + shape);
            }
            return List.of(new TensorMeta(in.get(0).dtype(), shape));
        }

        public Layout view(Layout in) {
            int rank = shape.rank(), lead = rank - in.shape().rank();
            long[] st = new long[rank];
            for (int i = lead; i < rank; i++) {
                st[i] = in.shape().dim(i - lead) == 1 && shape.dim(i) != 1 ? 0 : in.strides()[i - lead];
            }
            return new Layout(shape, st, in.offset());
        }
    }

    /** The diagonal of dimensions {@code dim1} and {@code dim2}, removed and appended as the last dimension (torch.diagonal). */
    record Diagonal(int dim1, int dim2) implements ViewOp {
        public String name() { return "diagonal"; }

        public List<TensorMeta> infer(List<TensorMeta> in) {
            arity(this, in, 1);
            Shape s = in.get(0).shape();
            if (dim1 == dim2 || dim1 < 0 || dim2 < 0 || dim1 >= s.rank() || dim2 >= s.rank()) {
                throw new KilnShapeException("diagonal: dimensions " + dim1 + " and " + dim2 + " must be distinct and within shape " + s);
            }
            return List.of(new TensorMeta(in.get(0).dtype(), view(Layout.contiguous(s)).shape()));
        }

        public Layout view(Layout in) {
            int[] d = in.shape().dims();
            int[] out = new int[d.length - 1];
            long[] st = new long[d.length - 1];
            int j = 0;
            for (int i = 0; i < d.length; i++) {
                if (i == dim1 || i == dim2) continue;
                out[j] = d[i];
                st[j++] = in.strides()[i];
            }
            out[j] = Math.min(d[dim1], d[dim2]);
            st[j] = in.strides()[dim1] + in.strides()[dim2];
            return new Layout(Shape.of(out), st, in.offset());
        }
    }

    // ---------------------------------------------------------------- shared checks

    private static void arity(Op op, List<TensorMeta> in, int n) {
        if (in.size() != n) {
            throw new IllegalArgumentException(op.name() + ": expected " + n + " inputs, got " + in.size());
        }
    }

    /**
     * Checks a dimension attribute is in resolved form, [0, rank) (0 for a 0-dimensional
     * tensor): negative dimensions are resolved when an op is built (Tensor, F), so that
     * equal computations are equal op values for the tracer's hashing and CSE.
     */
    private static void resolvedDim(Op op, int dim, Shape s) {
        int limit = Math.max(s.rank(), 1);
        if (dim < 0 || dim >= limit) {
            throw new KilnShapeException(op.name() + ": dimension " + dim + " is out of range for shape " + s + " (rank "
                    + s.rank() + "): an op holds a resolved dimension in [0, " + (limit - 1) + "]"
                    + (dim < 0 && dim >= -limit ? "; Tensor and F methods resolve negative ones (here " + (dim + limit) + ")" : ""));
        }
    }

    private static void requireFloat(Op op, TensorMeta t) {
        if (!t.dtype().isFloatingPoint()) {
            throw new KilnTypeException(op.name() + ": expected a floating-point tensor, got " + t.dtype() + t.shape());
        }
    }

    private static void requireIndex(Op op, TensorMeta t) {
        if (t.dtype() != DType.INT32 && t.dtype() != DType.INT64) {
            throw new KilnTypeException(op.name() + ": indices must be int32 or int64, got " + t.dtype());
        }
    }

    private static Shape reducedShape(int[] d, boolean[] reduced, boolean keepdim) {
        int[] out = new int[d.length];
        int j = 0;
        for (int i = 0; i < d.length; i++) {
            if (!reduced[i]) out[j++] = d[i];
            else if (keepdim) out[j++] = 1;
        }
        return Shape.of(java.util.Arrays.copyOf(out, j));
    }

    private static Shape statShape(Shape x, int axis) {
        int[] d = x.dims();
        for (int i = axis; i < d.length; i++) d[i] = 1;
        return Shape.of(d);
    }

    private static void checkNormParams(Op op, List<TensorMeta> in, int axis) {
        Shape x = in.get(0).shape();
        if (axis < 0 || axis > x.rank()) {
            throw new KilnShapeException(op.name() + ": axis " + axis + " is out of range for shape " + x);
        }
        Shape normalized = Shape.of(java.util.Arrays.copyOfRange(x.dims(), axis, x.rank()));
        for (int i = 1; i < in.size(); i++) {
            Shape p = in.get(i).shape();
            Shape b = Shape.broadcast(op.name(), normalized, p);
            if (!b.equals(normalized)) {
                throw new KilnShapeException(op.name() + ": " + (i == 1 ? "weight" : "bias") + " of shape " + p
                        + " does not match the normalized shape " + normalized + " of input " + x);
            }
        }
    }
}
