package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Re-forms the attention pattern users write by hand,
 * {@code softmax(mask(q @ kᵀ * scale), -1) @ v}, into one
 * {@code scaled_dot_product_attention}, which never materialises the score matrix and,
 * for a causal mask, skips the blocks above the diagonal.
 *
 * <p>Recognised: a {@code matmul} of a last-dimension {@code softmax} with v, whose scores
 * are {@code q @ kᵀ} ({@code kᵀ} a transpose of the last two dimensions of k, or any value,
 * transposed back), optionally scaled by a host scalar ({@code * c} or {@code / c}), then
 * optionally masked: {@code where(keep, s, -inf)}, {@code where(drop, -inf, s)} (the
 * {@code -inf} a {@code full} constant) or {@code s + m} for a float mask m. Every
 * intermediate must have no other use.
 *
 * <p>The rewrite keeps the pattern's results, including its NaN for a row in which every
 * key is masked (the softmax of all {@code -inf}), where the attention kernel gives zeros:
 * <ul>
 * <li>a mask computed from constants only is evaluated at compile time: when it is the
 *     causal triangle it becomes {@code is_causal} with no mask tensor; otherwise it stays
 *     the mask, and only when no row is fully masked and a float mask holds neither NaN
 *     nor {@code +inf};
 * <li>a bool mask known only at run time is passed as the mask, and rows without a
 *     visible key are set to NaN after the kernel, as the pattern computes them;
 * <li>a float mask known only at run time is left alone: its NaN, {@code +inf} and
 *     all-{@code -inf} rows would need the whole score row to reproduce.
 * </ul>
 * Values match the pattern's to rounding (the kernel accumulates in a different order),
 * not bit for bit.
 */
public final class FormAttention implements GraphPass {
    /** Constant masks larger than this are not evaluated at compile time. */
    static final long MAX_EVALUATED_MASK = 1L << 24;

    @Override
    public String name() { return "form-attention"; }

    /** A recognised pattern, in old values of the source graph. */
    private record Match(ValueRef q, ValueRef kT, boolean kTransposed, ValueRef v, double scale, Mask mask) {}

    /** The mask of a match: the mask value and whether true (or a float added) means the key takes part. */
    private record Mask(ValueRef value, boolean keepWhenTrue, boolean isFloat) {}

    @Override
    public PassResult run(Graph graph) {
        GraphUses uses = new GraphUses(graph);
        List<String> details = new ArrayList<>();
        Graph out = GraphTransformer.transform(graph, (cx, node) -> {
            Match m = match(graph, uses, node);
            ValueRef replacement = m == null ? null : emit(cx, graph, m, details, node);
            if (replacement == null) cx.copy(node);
            else cx.replace(node, replacement);
        });
        return PassResult.of(out, "formed attention from", details);
    }

    // ---------------------------------------------------------------- matching (old graph)

    private static Match match(Graph g, GraphUses uses, Node.Apply root) {
        if (!(root.op() instanceof Op.MatMul) || !root.outputs().get(0).dtype().isFloatingPoint()) return null;
        Node.Apply softmax = uses.singleUseProducer(root.inputs().get(0));
        if (softmax == null || !(softmax.op() instanceof Op.Softmax sm) || sm.log()) return null;
        int rank = softmax.outputs().get(0).shape().rank();
        if (rank < 2 || Math.floorMod(sm.dim(), rank) != rank - 1) return null;
        ValueRef v = root.inputs().get(1);
        if (g.meta(v).shape().rank() < 2) return null;

        ValueRef s = softmax.inputs().get(0);
        Mask mask = null;
        Node.Apply n = uses.singleUseProducer(s);
        if (n != null) {
            mask = maskOf(g, n);
            if (mask != null) {
                s = scoresOperand(g, n);
                n = uses.singleUseProducer(s);
            }
        }
        double scale = 1;
        if (n != null && n.op() instanceof Op.BinaryScalar bs && !bs.scalarFirst() && bs.scalar() != 0 && Double.isFinite(bs.scalar())
                && (bs.fn() == BinaryFn.MUL || bs.fn() == BinaryFn.DIV)) {
            scale = bs.fn() == BinaryFn.MUL ? bs.scalar() : 1 / bs.scalar();
            s = n.inputs().get(0);
            n = uses.singleUseProducer(s);
        }
        if (n == null || !(n.op() instanceof Op.MatMul)) return null;
        ValueRef q = n.inputs().get(0), kT = n.inputs().get(1);
        if (g.meta(q).shape().rank() < 2 || g.meta(kT).shape().rank() < 2) return null;
        DType dt = g.meta(q).dtype();
        if (g.meta(kT).dtype() != dt || g.meta(v).dtype() != dt || (mask != null && mask.isFloat() && g.meta(mask.value()).dtype() != dt)) return null;
        boolean transposed = g.node(kT.node()) instanceof Node.Apply p && p.op() instanceof Op.Permute perm && swapsLastTwo(perm.dims());
        return new Match(q, kT, transposed, v, scale, mask);
    }

    /** The mask step of {@code n}, or null when it is not one. */
    private static Mask maskOf(Graph g, Node.Apply n) {
        return switch (n.op()) {
            case Op.Where w when g.meta(n.inputs().get(0)).dtype() == DType.BOOL -> {
                if (isNegativeInfinity(g, n.inputs().get(2))) yield new Mask(n.inputs().get(0), true, false);
                if (isNegativeInfinity(g, n.inputs().get(1))) yield new Mask(n.inputs().get(0), false, false);
                yield null;
            }
            case Op.Binary b when b.fn() == BinaryFn.ADD -> {
                // The scores are the operand of the score shape; the mask broadcasts to it.
                Shape out = n.outputs().get(0).shape();
                boolean leftScores = g.meta(n.inputs().get(0)).shape().equals(out) && producedByScores(g, n.inputs().get(0));
                yield new Mask(n.inputs().get(leftScores ? 1 : 0), true, true);
            }
            default -> null;
        };
    }

    private static ValueRef scoresOperand(Graph g, Node.Apply maskStep) {
        return switch (maskStep.op()) {
            case Op.Where w -> isNegativeInfinity(g, maskStep.inputs().get(2)) ? maskStep.inputs().get(1) : maskStep.inputs().get(2);
            default -> {
                Shape out = maskStep.outputs().get(0).shape();
                ValueRef left = maskStep.inputs().get(0);
                yield g.meta(left).shape().equals(out) && producedByScores(g, left) ? left : maskStep.inputs().get(1);
            }
        };
    }

    /** Whether {@code v} is a matmul or a scaled matmul: the scores side of a float mask's add. */
    private static boolean producedByScores(Graph g, ValueRef v) {
        if (!(g.node(v.node()) instanceof Node.Apply ap)) return false;
        if (ap.op() instanceof Op.MatMul) return true;
        return ap.op() instanceof Op.BinaryScalar && g.node(ap.inputs().get(0).node()) instanceof Node.Apply p && p.op() instanceof Op.MatMul;
    }

    private static boolean isNegativeInfinity(Graph g, ValueRef v) {
        return g.node(v.node()) instanceof Node.Apply ap && ap.op() instanceof Op.Full f && f.value() == Double.NEGATIVE_INFINITY
                && f.dtype().isFloatingPoint();
    }

    private static boolean swapsLastTwo(List<Integer> dims) {
        int r = dims.size();
        for (int i = 0; i < r - 2; i++) if (dims.get(i) != i) return false;
        return dims.get(r - 2) == r - 1 && dims.get(r - 1) == r - 2;
    }

    // ---------------------------------------------------------------- rewriting (new graph)

    private static ValueRef emit(TransformContext cx, Graph g, Match m, List<String> details, Node.Apply root) {
        // Decide everything on the old graph first: a rewrite given up after emitting nodes
        // would leave dead nodes that DCE removes and this pass adds again, round after round.
        String how;
        boolean causal = false, maskInput = false, nanForHiddenRows = false;
        Shape scores = g.meta(root.inputs().get(0)).shape();
        if (m.mask() == null) {
            how = "no mask";
        } else {
            Tensor constant = ConstantSubgraph.dependsOnInputs(g, m.mask().value()) ? null
                    : ConstantSubgraph.evaluate(g, m.mask().value(), MAX_EVALUATED_MASK);
            if (constant != null) {
                MaskFacts facts = MaskFacts.of(constant, scores, m.mask().keepWhenTrue(), m.mask().isFloat());
                if (!facts.safe()) return null;
                causal = facts.causal();
                how = causal ? "constant causal mask, in the kernel" : "constant mask";
            } else if (m.mask().isFloat()) {
                return null;
            } else {
                nanForHiddenRows = true;
                how = "run-time bool mask";
            }
            maskInput = !causal;
        }
        Shape kShape = g.meta(m.kT()).shape();
        int rank = kShape.rank();
        Shape k = kShape.with(-1, kShape.dim(-2)).with(-2, kShape.dim(-1));
        Op.ScaledDotProductAttention sdpa = new Op.ScaledDotProductAttention(causal, m.scale(), false, maskInput);
        List<TensorMeta> argMetas = new ArrayList<>(List.of(g.meta(m.q()), new TensorMeta(g.meta(m.kT()).dtype(), k), g.meta(m.v())));
        if (maskInput) argMetas.add(m.mask().isFloat() ? g.meta(m.mask().value()) : new TensorMeta(DType.BOOL, g.meta(m.mask().value()).shape()));
        try {
            if (!sdpa.infer(argMetas).get(0).equals(root.outputs().get(0))) return null;
        } catch (RuntimeException e) {
            return null; // batch dimensions that broadcast in ways the kernel does not take
        }

        List<ValueRef> args = new ArrayList<>();
        args.add(cx.value(m.q()));
        args.add(m.kTransposed() ? cx.value(((Node.Apply) g.node(m.kT().node())).inputs().get(0))
                : cx.emit1(new Op.Permute(swapLastTwo(rank)), List.of(cx.value(m.kT()))));
        args.add(cx.value(m.v()));
        if (maskInput) {
            ValueRef mask = cx.value(m.mask().value());
            args.add(m.mask().keepWhenTrue() ? mask : cx.emit1(new Op.Unary(UnaryFn.LOGICAL_NOT), List.of(mask)));
        }
        ValueRef y = cx.emit1(sdpa, args);
        if (nanForHiddenRows) y = nanWhereNoKeyVisible(cx, y, args.get(3));
        details.add("%" + root.id() + " = matmul(softmax(...), %" + m.v().node() + "): scaled_dot_product_attention(scale="
                + m.scale() + ", " + how + ")");
        return y;
    }

    /** {@code where(any(keep, -1), y, NaN)}, the pattern's result for rows whose keys are all masked. */
    private static ValueRef nanWhereNoKeyVisible(TransformContext cx, ValueRef y, ValueRef keep) {
        DType dt = cx.meta(y).dtype();
        int rank = cx.meta(keep).shape().rank();
        ValueRef asFloat = cx.emit1(new Op.Cast(DType.FLOAT32), List.of(keep));
        ValueRef anyVisible = cx.emit1(new Op.Reduce(ReduceFn.MAX, List.of(rank - 1), true), List.of(asFloat));
        ValueRef visible = cx.emit1(new Op.BinaryScalar(BinaryFn.GT, 0, false, false), List.of(anyVisible));
        ValueRef nan = cx.emit1(new Op.Full(Shape.SCALAR, dt, Double.NaN), List.of());
        return cx.emit1(new Op.Where(), List.of(visible, y, nan));
    }

    private static List<Integer> swapLastTwo(int rank) {
        List<Integer> dims = new ArrayList<>(IntStream.range(0, rank).boxed().toList());
        dims.set(rank - 2, rank - 1);
        dims.set(rank - 1, rank - 2);
        return dims;
    }

    /** What a compile-time mask allows: the kernel's causal flag, or a mask whose rows all see a key. */
    private record MaskFacts(boolean causal, boolean safe) {
        static MaskFacts of(Tensor mask, Shape scores, boolean keepWhenTrue, boolean isFloat) {
            Shape shape = mask.shape();
            int rank = shape.rank();
            int rows = rank >= 2 ? shape.dim(-2) : 1, cols = rank >= 1 ? shape.dim(-1) : 1;
            long planes = rows * (long) cols == 0 ? 0 : shape.numel() / ((long) rows * cols);
            double[] values = mask.toDoubleArray();
            // Causal only when the mask spells out every (row, key) pair rather than broadcasting one.
            boolean causal = rank >= 2 && rows == scores.dim(-2) && cols == scores.dim(-1), safe = true;
            for (long p = 0; p < planes && safe; p++) {
                for (int i = 0; i < rows && safe; i++) {
                    boolean anyVisible = false;
                    for (int j = 0; j < cols; j++) {
                        double x = values[(int) ((p * rows + i) * cols + j)];
                        boolean visible;
                        if (isFloat) {
                            if (Double.isNaN(x) || x == Double.POSITIVE_INFINITY) safe = false;
                            visible = x != Double.NEGATIVE_INFINITY;
                            if (x != 0 && visible) causal = false;
                        } else {
                            visible = (x != 0) == keepWhenTrue;
                        }
                        anyVisible |= visible;
                        if (visible != (j <= i)) causal = false;
                    }
                    if (!anyVisible) safe = false;
                }
            }
            return new MaskFacts(causal && safe, safe);
        }
    }
}
