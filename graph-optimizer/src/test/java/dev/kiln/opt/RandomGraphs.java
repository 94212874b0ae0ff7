package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Random valid graphs for the optimizer's properties: inputs and Full constants of random
 * shapes and dtypes, unary ops, binary ops with broadcasting, scalar ops, casts, clamps,
 * reshapes, permutes, slices, expands, reductions, arange, repeated subexpressions and
 * branches no output uses, biased towards the patterns the passes rewrite (identity
 * constants, same-shape views, repeated views).
 *
 * <p>Every graph runs without error on any input, and the optimized graph's results can be
 * compared bit for bit, except where the generator marks a value <em>approximate</em>:
 * <ul>
 * <li>Folding a float32 transcendental function of a constant gives the correctly rounded
 *     value, the kernel a value within a few ulp. Such values ("approximate") only flow
 *     into ops that keep relative error small (no sums, differences, comparisons or
 *     narrowing casts), so they compare within 1e-6 relative.
 * <li>A float32 sum or mean adds in an order that depends on its input's layout, which
 *     the passes may change (a view replaced by a constant, a copy removed); the generator
 *     gives float32 sums a {@code contiguous} input, so both graphs add alike.
 * </ul>
 * Integer division, integer powers with a tensor exponent and NaN clamp bounds on
 * integers are left out: they can fail at run time on random inputs.
 */
final class RandomGraphs {
    /** A generated graph; {@code approximate.get(i)} says whether output i compares within tolerance. */
    record Generated(Graph graph, List<Boolean> approximate) {}

    private static final DType[] DTYPES = {DType.FLOAT32, DType.FLOAT32, DType.FLOAT32, DType.FLOAT32, DType.FLOAT64,
            DType.INT32, DType.INT32, DType.INT64, DType.FLOAT16, DType.BOOL};
    private static final double[] FLOAT_CONSTANTS = {0.0, -0.0, 1.0, 1.0, 2.0, -1.5, 0.5, 3.0, -0.25, 0.1};
    private static final int[] INT_CONSTANTS = {0, 0, 1, 1, -1, 2, 3, -3};
    private static final UnaryFn[] EXACT_IN_FLOAT = {UnaryFn.NEG, UnaryFn.ABS, UnaryFn.RELU, UnaryFn.SQRT, UnaryFn.LOGICAL_NOT};
    private static final UnaryFn[] KEEPS_RELATIVE_ERROR = {UnaryFn.NEG, UnaryFn.ABS, UnaryFn.RELU, UnaryFn.SQRT};

    private final SplittableRandom r;
    private final GraphBuilder b = new GraphBuilder();
    private final List<ValueRef> values = new ArrayList<>();
    /** Computed from Full constants only, so the folding pass may compute it at compile time. */
    private final List<Boolean> constant = new ArrayList<>();
    private final List<Boolean> approximate = new ArrayList<>();
    /** The ops applied so far with their arguments and results, to repeat some. */
    private final List<Op> ops = new ArrayList<>();
    private final List<List<ValueRef>> opArgs = new ArrayList<>();
    private final List<Integer> opResults = new ArrayList<>();
    private int inputs;

    private RandomGraphs(long seed) {
        this.r = new SplittableRandom(seed);
    }

    static Generated generate(long seed) {
        return new RandomGraphs(seed).build();
    }

    private Generated build() {
        addInput();
        int steps = 3 + r.nextInt(22);
        for (int i = 0; i < steps; i++) step();
        List<ValueRef> outs = new ArrayList<>();
        List<Boolean> approx = new ArrayList<>();
        for (int i = 0, n = 1 + r.nextInt(3); i < n; i++) {
            // Later values more often, so that long chains are used.
            int k = Math.max(r.nextInt(values.size()), r.nextInt(values.size()));
            outs.add(values.get(k));
            approx.add(approximate.get(k));
        }
        return new Generated(b.build(outs), approx);
    }

    private void step() {
        switch (r.nextInt(18)) {
            case 0 -> { if (inputs < 4) addInput(); else full(randomShape(), randomDType()); }
            case 1 -> full(partnerShape(meta(pick()).shape()), randomDType());
            case 2, 3 -> unary(pick());
            case 4, 5 -> binary(pick());
            case 6, 7 -> scalar(pick());
            case 8 -> cast(pick());
            case 9 -> clamp(pick());
            case 10 -> reshape(pick());
            case 11 -> permute(pick());
            case 12 -> slice(pick());
            case 13 -> expand(pick());
            case 14 -> reduce(pick());
            case 15, 16 -> identityPattern(pick());
            default -> { if (!ops.isEmpty() && r.nextInt(4) > 0) repeat(); else arange(); }
        }
    }

    // ---------------------------------------------------------------- sources

    private void addInput() {
        inputs++;
        add(b.input(new TensorMeta(randomDType(), randomShape())), false, false);
    }

    private void full(Shape shape, DType dtype) {
        double v = dtype.isFloatingPoint() ? FLOAT_CONSTANTS[r.nextInt(FLOAT_CONSTANTS.length)]
                : dtype == DType.BOOL ? r.nextInt(2) : INT_CONSTANTS[r.nextInt(INT_CONSTANTS.length)];
        if (dtype.isFloatingPoint() && r.nextInt(20) == 0) v = Double.NaN;
        apply(new Op.Full(shape, dtype, v), List.of());
    }

    private void arange() {
        DType t = r.nextBoolean() ? DType.FLOAT32 : DType.INT64;
        apply(new Op.Arange(r.nextInt(-2, 3), r.nextBoolean() ? 1 : 0.5, r.nextInt(6), t), List.of());
    }

    // ---------------------------------------------------------------- pointwise

    private void unary(int i) {
        DType t = meta(i).dtype();
        UnaryFn fn;
        if (approximate.get(i)) {
            fn = KEEPS_RELATIVE_ERROR[r.nextInt(KEEPS_RELATIVE_ERROR.length)];
        } else if (constant.get(i) && floatType(t) != DType.FLOAT32 && floatType(t) != DType.FLOAT64) {
            fn = EXACT_IN_FLOAT[r.nextInt(EXACT_IN_FLOAT.length)];
        } else {
            fn = UnaryFn.values()[r.nextInt(UnaryFn.values().length)];
        }
        if (t == DType.BOOL && (fn == UnaryFn.NEG || fn == UnaryFn.ABS || fn == UnaryFn.RELU)) fn = UnaryFn.LOGICAL_NOT;
        if (approximate.get(i) && fn == UnaryFn.LOGICAL_NOT) return;
        Op op = new Op.Unary(fn);
        // A float32 transcendental of a constant is folded to the correctly rounded value: approximate.
        boolean folds = constant.get(i) && !Arrays.asList(EXACT_IN_FLOAT).contains(fn) && floatType(t) == DType.FLOAT32;
        applyFrom(op, List.of(i), folds);
    }

    /** The type a float-valued unary function of dtype t computes in. */
    private static DType floatType(DType t) {
        return t.isFloatingPoint() ? t : DType.FLOAT32;
    }

    private void binary(int i) {
        int j = partner(i);
        boolean approx = approximate.get(i) || approximate.get(j);
        BinaryFn fn;
        do {
            fn = BinaryFn.values()[r.nextInt(BinaryFn.values().length)];
        } while (!allowedBinary(fn, i, j, approx));
        applyFrom(new Op.Binary(fn), r.nextBoolean() ? List.of(i, j) : List.of(j, i), false);
    }

    private boolean allowedBinary(BinaryFn fn, int i, int j, boolean approx) {
        if (approx) return fn == BinaryFn.MUL || fn == BinaryFn.DIV || fn == BinaryFn.MINIMUM || fn == BinaryFn.MAXIMUM;
        DType compute = DType.promote(meta(i).dtype(), meta(j).dtype());
        boolean integral = !compute.isFloatingPoint();
        return !(integral && (fn == BinaryFn.TRUNC_DIV || fn == BinaryFn.FLOOR_DIV || fn == BinaryFn.POW));
    }

    private void scalar(int i) {
        boolean approx = approximate.get(i);
        BinaryFn fn;
        do {
            fn = BinaryFn.values()[r.nextInt(BinaryFn.values().length)];
        } while (approx && fn != BinaryFn.MUL && fn != BinaryFn.DIV);
        double s = switch (r.nextInt(8)) {
            case 0 -> 0.0;
            case 1 -> -0.0;
            case 2, 3 -> 1.0;
            case 4 -> 2.0;
            case 5 -> -1.0;
            case 6 -> 0.5;
            default -> 3.0;
        };
        boolean integral = s == Math.rint(s) && r.nextBoolean();
        boolean first = r.nextInt(3) == 0;
        Op.BinaryScalar op = new Op.BinaryScalar(fn, s, integral, first);
        DType compute;
        try {
            compute = op.computeType(meta(i).dtype());
        } catch (KilnException e) {
            return;
        }
        if (!compute.isFloatingPoint()) {
            // Integer division by zero, and negative or tensor-valued integer powers, fail at run time.
            if (fn == BinaryFn.TRUNC_DIV || fn == BinaryFn.FLOOR_DIV) return;
            if (fn == BinaryFn.POW && (first || s < 0)) return;
        }
        applyFrom(op, List.of(i), false);
    }

    private void cast(int i) {
        DType to = r.nextInt(4) == 0 ? meta(i).dtype() : randomDType();
        if (approximate.get(i) && to != DType.FLOAT64 && to != meta(i).dtype()) return;
        applyFrom(new Op.Cast(to), List.of(i), false);
    }

    private void clamp(int i) {
        double[] bounds = {Double.NEGATIVE_INFINITY, -1, -0.5, 0, 0.5, 1, 2, Double.POSITIVE_INFINITY};
        double lo = bounds[r.nextInt(bounds.length)], hi = bounds[r.nextInt(bounds.length)];
        if (meta(i).dtype().isFloatingPoint() && r.nextInt(10) == 0) lo = Double.NaN;
        applyFrom(new Op.Clamp(lo, hi), List.of(i), false);
    }

    /**
     * An op that may return its input: x with an identity constant (as a scalar or a Full,
     * of x's dtype and shape or of others, which broadcast or promote and must block the
     * rewrite), neg(neg(x)), a reshape or permute of a reshape or permute, a contiguous copy.
     */
    private void identityPattern(int i) {
        TensorMeta m = meta(i);
        switch (r.nextInt(6)) {
            case 0, 1 -> {
                BinaryFn[] fns = approximate.get(i) ? new BinaryFn[] {BinaryFn.MUL, BinaryFn.DIV}
                        : new BinaryFn[] {BinaryFn.ADD, BinaryFn.SUB, BinaryFn.MUL, BinaryFn.DIV, BinaryFn.POW};
                BinaryFn fn = fns[r.nextInt(fns.length)];
                double c = fn == BinaryFn.ADD || fn == BinaryFn.SUB ? (r.nextBoolean() ? 0.0 : -0.0) : 1.0;
                boolean first = (fn == BinaryFn.ADD || fn == BinaryFn.MUL) && r.nextBoolean();
                if (r.nextBoolean()) {
                    applyFrom(new Op.BinaryScalar(fn, c, r.nextBoolean(), first), List.of(i), false);
                } else {
                    DType t = r.nextBoolean() ? m.dtype() : randomDType();
                    Shape s = r.nextInt(3) > 0 ? m.shape() : partnerShape(m.shape());
                    int k = apply(new Op.Full(s, t, c), List.of(), true, false);
                    applyFrom(new Op.Binary(fn), first ? List.of(k, i) : List.of(i, k), false);
                }
            }
            case 2 -> {
                int k = applyFrom(new Op.Unary(UnaryFn.NEG), List.of(i), false);
                if (k >= 0) applyFrom(new Op.Unary(UnaryFn.NEG), List.of(k), false);
            }
            case 3 -> {
                reshape(i);
                reshape(values.size() - 1);
            }
            case 4 -> {
                permute(i);
                permute(values.size() - 1);
            }
            default -> applyFrom(new Op.Contiguous(), List.of(i), false);
        }
    }

    // ---------------------------------------------------------------- views and reductions

    private void reshape(int i) {
        int[] d = meta(i).shape().dims();
        int[] to = switch (r.nextInt(5)) {
            case 0 -> d;
            case 1 -> new int[] {(int) meta(i).shape().numel()};
            case 2 -> insert(d, r.nextInt(d.length + 1), 1);
            case 3 -> d.length >= 2 ? merge(d, r.nextInt(d.length - 1)) : d;
            default -> withoutOnes(d);
        };
        applyFrom(new Op.Reshape(Shape.of(to)), List.of(i), false);
    }

    private void permute(int i) {
        int rank = meta(i).shape().rank();
        List<Integer> p = new ArrayList<>();
        for (int k = 0; k < rank; k++) p.add(k);
        if (r.nextInt(4) > 0) java.util.Collections.shuffle(p, new java.util.Random(r.nextLong()));
        applyFrom(new Op.Permute(p), List.of(i), false);
    }

    private void slice(int i) {
        Shape s = meta(i).shape();
        if (s.rank() == 0) return;
        int dim = r.nextInt(s.rank()), size = s.dimAt(dim);
        if (size == 0 || r.nextInt(3) == 0) {
            applyFrom(new Op.Slice(dim, 0, 1, size), List.of(i), false);
            return;
        }
        long step = r.nextBoolean() ? 1 : r.nextBoolean() ? 2 : -1;
        long start = step > 0 ? r.nextInt(size) : size - 1 - r.nextInt(size);
        long room = step > 0 ? (size - 1 - start) / step + 1 : start / -step + 1;
        int length = 1 + r.nextInt((int) room);
        applyFrom(new Op.Slice(dim, start, step, length), List.of(i), false);
    }

    private void expand(int i) {
        int[] d = meta(i).shape().dims();
        int[] to = d.clone();
        for (int k = 0; k < to.length; k++) if (to[k] == 1 && r.nextBoolean()) to[k] = 1 + r.nextInt(3);
        if (to.length < 3 && r.nextInt(3) == 0) to = insert(to, 0, 1 + r.nextInt(3));
        applyFrom(new Op.Expand(Shape.of(to)), List.of(i), false);
    }

    private void reduce(int i) {
        TensorMeta m = meta(i);
        ReduceFn fn = ReduceFn.values()[r.nextInt(ReduceFn.values().length)];
        boolean addsUp = fn == ReduceFn.SUM || fn == ReduceFn.MEAN || fn == ReduceFn.PROD;
        if (approximate.get(i) && addsUp) return;
        List<Integer> dims = new ArrayList<>();
        for (int k = 0; k < m.shape().rank(); k++) if (r.nextBoolean()) dims.add(k);
        int x = i;
        if (m.dtype() == DType.FLOAT32 && (fn == ReduceFn.SUM || fn == ReduceFn.MEAN)) {
            // Makes the summation order the same in both graphs (see the class comment).
            x = applyFrom(new Op.Contiguous(), List.of(i), false);
            if (x < 0) return;
        }
        applyFrom(new Op.Reduce(fn, dims, r.nextBoolean()), List.of(x), false);
    }

    /** The same op on the same values again: a common subexpression (approximate when the first one is). */
    private void repeat() {
        int k = r.nextInt(ops.size());
        apply(ops.get(k), opArgs.get(k), constant.get(opResults.get(k)), approximate.get(opResults.get(k)));
    }

    // ---------------------------------------------------------------- plumbing

    /** Applies op to values {@code args}; returns the new value's index, or -1 when the op rejects them. */
    private int applyFrom(Op op, List<Integer> args, boolean approximateResult) {
        List<ValueRef> refs = new ArrayList<>();
        boolean isConstant = true, approx = approximateResult;
        for (int a : args) {
            refs.add(values.get(a));
            isConstant &= constant.get(a);
            approx |= approximate.get(a);
        }
        return apply(op, refs, isConstant, approx);
    }

    private void apply(Op op, List<ValueRef> refs) {
        apply(op, refs, op instanceof Op.Full, false);
    }

    private int apply(Op op, List<ValueRef> refs, boolean isConstant, boolean approx) {
        List<ValueRef> out;
        try {
            out = b.apply(op, refs);
        } catch (KilnException | IllegalArgumentException e) {
            return -1; // not valid for these operands (dtype or shape): generate something else
        }
        int index = add(out.get(0), isConstant, approx);
        ops.add(op);
        opArgs.add(refs);
        opResults.add(index);
        return index;
    }

    private int add(ValueRef v, boolean isConstant, boolean approx) {
        values.add(v);
        constant.add(isConstant);
        approximate.add(approx);
        return values.size() - 1;
    }

    private TensorMeta meta(int i) { return b.meta(values.get(i)); }

    private int pick() { return r.nextInt(values.size()); }

    /** A value whose shape broadcasts with value i's, made as a new constant when none exists. */
    private int partner(int i) {
        Shape s = meta(i).shape();
        for (int tries = 0; tries < 6; tries++) {
            int j = pick();
            try {
                Shape.broadcast("test", s, meta(j).shape());
                return j;
            } catch (KilnException e) {
                // try another
            }
        }
        full(partnerShape(s), randomDType());
        return values.size() - 1;
    }

    /** A shape that broadcasts with s: s itself, s with some dimensions 1, a suffix of s, or s with a new leading dimension. */
    private Shape partnerShape(Shape s) {
        int[] d = s.dims();
        return switch (r.nextInt(4)) {
            case 0 -> s;
            case 1 -> {
                for (int k = 0; k < d.length; k++) if (r.nextBoolean()) d[k] = 1;
                yield Shape.of(d);
            }
            case 2 -> Shape.of(Arrays.copyOfRange(d, r.nextInt(d.length + 1), d.length));
            default -> d.length < 3 ? Shape.of(insert(d, 0, 1 + r.nextInt(4))) : s;
        };
    }

    private DType randomDType() { return DTYPES[r.nextInt(DTYPES.length)]; }

    private Shape randomShape() {
        int[] d = new int[r.nextInt(4)];
        for (int k = 0; k < d.length; k++) d[k] = r.nextInt(30) == 0 ? 0 : 1 + r.nextInt(4);
        return Shape.of(d);
    }

    private static int[] insert(int[] d, int at, int size) {
        int[] out = new int[d.length + 1];
        System.arraycopy(d, 0, out, 0, at);
        out[at] = size;
        System.arraycopy(d, at, out, at + 1, d.length - at);
        return out;
    }

    private static int[] merge(int[] d, int at) {
        int[] out = new int[d.length - 1];
        System.arraycopy(d, 0, out, 0, at);
        out[at] = d[at] * d[at + 1];
        System.arraycopy(d, at + 2, out, at + 1, d.length - at - 2);
        return out;
    }

    private static int[] withoutOnes(int[] d) {
        return Arrays.stream(d).filter(x -> x != 1).toArray();
    }
}
