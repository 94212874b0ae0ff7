package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.opt.SingleOpFormation.Match;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.Shape;

import java.util.List;

/**
 * Re-forms softmax and RMS normalisation written out op by op into the single ops whose
 * kernels read each row once and keep the statistics in registers:
 * <ul>
 * <li>{@code e = exp(x - max(x, d, keepdim)); e / sum(e, d, keepdim)} becomes
 *     {@code softmax(x, d)}. Only the form that subtracts the maximum: it gives the same
 *     NaN rows as the op (a row with NaN or {@code +inf}, or only {@code -inf}), where the
 *     form without it overflows to NaN on rows the op computes.
 * <li>{@code x * rsqrt(mean(x * x, -1, keepdim) + eps)} (also with {@code x ** 2}, and
 *     {@code x / sqrt(...)}), optionally multiplied by a weight shaped as the last
 *     dimension, becomes {@code rms_norm(x, weight, eps)}, as LLaMA's reference code
 *     writes it.
 * </ul>
 * Every intermediate must have no use outside the pattern. Values match the pattern's to
 * rounding (the kernels accumulate in another order), not bit for bit.
 */
public final class FormNormalization implements GraphPass {

    @Override
    public String name() { return "form-normalization"; }

    @Override
    public PassResult run(Graph graph) {
        return SingleOpFormation.run(graph, (g, uses, node) -> {
            Match m = softmax(g, uses, node);
            return m != null ? m : rmsNorm(g, uses, node);
        });
    }

    // ---------------------------------------------------------------- softmax

    private static Match softmax(Graph g, GraphUses uses, Node.Apply div) {
        if (!(div.op() instanceof Op.Binary b) || b.fn() != BinaryFn.DIV || !div.outputs().get(0).dtype().isFloatingPoint()) return null;
        Node.Apply exp = uses.producer(div.inputs().get(0)), sum = uses.producer(div.inputs().get(1));
        if (exp == null || sum == null || !(exp.op() instanceof Op.Unary u) || u.fn() != UnaryFn.EXP) return null;
        if (!(sum.op() instanceof Op.Reduce) || uses.count(exp.value(0)) != 2 || !uses.onlyUser(sum.value(0), div)) return null;
        if (!sum.inputs().get(0).equals(exp.value(0))) return null;
        Node.Apply sub = uses.singleUseProducer(exp.inputs().get(0));
        if (sub == null || !(sub.op() instanceof Op.Binary s) || s.fn() != BinaryFn.SUB) return null;
        ValueRef x = sub.inputs().get(0);
        Node.Apply max = uses.singleUseProducer(sub.inputs().get(1));
        Shape shape = g.meta(x).shape();
        if (max == null || !(max.op() instanceof Op.Reduce) || !max.inputs().get(0).equals(x) || !shape.equals(div.outputs().get(0).shape())) {
            return null;
        }
        Integer dim = keptSingleDim(sum, ReduceFn.SUM, shape.rank());
        if (dim == null || !dim.equals(keptSingleDim(max, ReduceFn.MAX, shape.rank()))) return null;
        return new Match(new Op.Softmax(dim, false), List.of(x), "exp(x - max) / sum is softmax(dim=" + dim + ")");
    }

    // ---------------------------------------------------------------- rms_norm

    private static Match rmsNorm(Graph g, GraphUses uses, Node.Apply root) {
        if (!(root.op() instanceof Op.Binary b) || !root.outputs().get(0).dtype().isFloatingPoint()) return null;
        // The weight, when there is one, multiplies the normalised value last.
        if (b.fn() == BinaryFn.MUL) {
            for (int side = 0; side < 2; side++) {
                Node.Apply normed = uses.singleUseProducer(root.inputs().get(side));
                ValueRef w = root.inputs().get(1 - side);
                Match inner = normed == null ? null : unweightedRms(g, uses, normed);
                Shape xs = inner == null ? null : g.meta(inner.args().get(0)).shape();
                if (inner != null && g.meta(w).shape().equals(Shape.of(xs.dim(-1))) && g.meta(w).dtype() == g.meta(inner.args().get(0)).dtype()
                        && root.outputs().get(0).shape().equals(xs)) {
                    Op.RmsNorm un = (Op.RmsNorm) inner.op();
                    return new Match(new Op.RmsNorm(un.axis(), un.eps(), true), List.of(inner.args().get(0), w),
                            inner.what() + ", times a weight");
                }
            }
        }
        return unweightedRms(g, uses, root);
    }

    /** {@code x * rsqrt(mean(x²) + eps)} or {@code x / sqrt(mean(x²) + eps)} over the last dimension. */
    private static Match unweightedRms(Graph g, GraphUses uses, Node.Apply root) {
        if (!(root.op() instanceof Op.Binary b) || (b.fn() != BinaryFn.MUL && b.fn() != BinaryFn.DIV)) return null;
        UnaryFn expected = b.fn() == BinaryFn.MUL ? UnaryFn.RSQRT : UnaryFn.SQRT;
        for (int side = 0; side < (b.fn() == BinaryFn.MUL ? 2 : 1); side++) {
            ValueRef x = root.inputs().get(side);
            Node.Apply root1 = uses.singleUseProducer(root.inputs().get(1 - side));
            if (root1 == null || !(root1.op() instanceof Op.Unary u) || u.fn() != expected) continue;
            Node.Apply addEps = uses.singleUseProducer(root1.inputs().get(0));
            if (addEps == null || !(addEps.op() instanceof Op.BinaryScalar a) || a.fn() != BinaryFn.ADD || !(a.scalar() >= 0)) continue;
            Node.Apply mean = uses.singleUseProducer(addEps.inputs().get(0));
            Shape shape = g.meta(x).shape();
            if (mean == null || keptSingleDim(mean, ReduceFn.MEAN, shape.rank()) == null
                    || keptSingleDim(mean, ReduceFn.MEAN, shape.rank()) != shape.rank() - 1) continue;
            Node.Apply square = uses.singleUseProducer(mean.inputs().get(0));
            if (square == null || !squares(square, x) || !root.outputs().get(0).shape().equals(shape)) continue;
            int axis = shape.rank() - 1;
            return new Match(new Op.RmsNorm(axis, a.scalar(), false), List.of(x),
                    "x " + (b.fn() == BinaryFn.MUL ? "* rsqrt" : "/ sqrt") + "(mean(x^2) + eps) is rms_norm(eps=" + a.scalar() + ")");
        }
        return null;
    }

    private static boolean squares(Node.Apply n, ValueRef x) {
        return switch (n.op()) {
            case Op.Binary b -> b.fn() == BinaryFn.MUL && n.inputs().get(0).equals(x) && n.inputs().get(1).equals(x);
            case Op.BinaryScalar s -> s.fn() == BinaryFn.POW && !s.scalarFirst() && s.scalar() == 2 && n.inputs().get(0).equals(x);
            default -> false;
        };
    }

    /** The one dimension a keepdim reduction of {@code fn} reduces, normalised; null when it is not one. */
    private static Integer keptSingleDim(Node.Apply n, ReduceFn fn, int rank) {
        if (!(n.op() instanceof Op.Reduce r) || r.fn() != fn || !r.keepdim() || r.dims().size() != 1 || rank == 0) return null;
        return Math.floorMod(r.dims().get(0), rank);
    }

}
