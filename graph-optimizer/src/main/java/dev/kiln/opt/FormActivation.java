package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.opt.SingleOpFormation.Match;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;

import java.util.ArrayList;
import java.util.List;

/**
 * Re-forms activations written out op by op (as ONNX exports them, and as code written
 * without {@code F.silu} or {@code F.gelu} does) into the single ops, whose kernels are one
 * polynomial each and which a matmul can take as its epilogue:
 * <ul>
 * <li>{@code x * sigmoid(x)} becomes {@code silu(x)};
 * <li>{@code x * 0.5 * (1 + erf(x / sqrt 2))}, with the factors in any order and grouping,
 *     {@code / 2} for {@code * 0.5} and {@code * 0.70710678} for {@code / sqrt 2}, becomes
 *     {@code gelu(x)}. The constant must be 1/sqrt 2 to float precision: a rounder one
 *     (0.7071) is another function.
 * </ul>
 * Every intermediate must have no use outside the pattern. Special values agree (NaN in,
 * NaN out; both give NaN at -inf and +inf at +inf); finite values match to rounding.
 */
public final class FormActivation implements GraphPass {
    private static final double INV_SQRT2 = 0.7071067811865476;
    /** float32 rounding of 1/sqrt 2 is within 3e-8 of it. */
    private static final double CONSTANT_TOLERANCE = 1e-7;

    @Override
    public String name() { return "form-activation"; }

    @Override
    public PassResult run(Graph graph) {
        return SingleOpFormation.run(graph, (g, uses, node) -> {
            if (node.outputs().size() != 1 || !node.outputs().get(0).dtype().isFloatingPoint()) return null;
            Match m = silu(g, uses, node);
            return m != null ? m : gelu(g, uses, node);
        });
    }

    private static Match unary(UnaryFn fn, ValueRef x, String what) { return new Match(new Op.Unary(fn), List.of(x), what); }

    private static Match silu(Graph g, GraphUses uses, Node.Apply mul) {
        if (!(mul.op() instanceof Op.Binary b) || b.fn() != BinaryFn.MUL) return null;
        for (int side = 0; side < 2; side++) {
            ValueRef x = mul.inputs().get(side);
            Node.Apply sigmoid = uses.singleUseProducer(mul.inputs().get(1 - side));
            if (sigmoid != null && sigmoid.op() instanceof Op.Unary u && u.fn() == UnaryFn.SIGMOID && sigmoid.inputs().get(0).equals(x)
                    && g.meta(x).equals(mul.outputs().get(0))) {
                return unary(UnaryFn.SILU, x, "x * sigmoid(x) is silu(x)");
            }
        }
        return null;
    }

    /** A product's tensor factors and the product of its scalar factors. */
    private record Product(List<ValueRef> factors, double scale) {}

    private static Match gelu(Graph g, GraphUses uses, Node.Apply root) {
        Product p = product(uses, root, true);
        if (p == null || p.scale() != 0.5 || p.factors().size() != 2) return null;
        for (int side = 0; side < 2; side++) {
            ValueRef x = p.factors().get(side);
            if (g.meta(x).equals(root.outputs().get(0)) && isOnePlusErfOfScaled(uses, p.factors().get(1 - side), x)) {
                return unary(UnaryFn.GELU, x, "x * 0.5 * (1 + erf(x / sqrt 2)) is gelu(x)");
            }
        }
        return null;
    }

    /**
     * The factors of the product rooted at {@code n}: through multiplications by tensors or
     * scalars and divisions by scalars, each absorbed node (all but the root) read only by
     * the product; null when {@code n} is not such a product.
     */
    private static Product product(GraphUses uses, Node.Apply n, boolean root) {
        ValueRef[] operands;
        double scale;
        switch (n.op()) {
            case Op.Binary b when b.fn() == BinaryFn.MUL -> {
                operands = n.inputs().toArray(ValueRef[]::new);
                scale = 1;
            }
            case Op.BinaryScalar s when s.fn() == BinaryFn.MUL -> {
                operands = new ValueRef[] {n.inputs().get(0)};
                scale = s.scalar();
            }
            case Op.BinaryScalar s when s.fn() == BinaryFn.DIV && !s.scalarFirst() -> {
                operands = new ValueRef[] {n.inputs().get(0)};
                scale = 1 / s.scalar();
            }
            default -> {
                return null;
            }
        }
        List<ValueRef> factors = new ArrayList<>();
        for (ValueRef v : operands) {
            Node.Apply inner = uses.singleUseProducer(v);
            Product sub = inner == null ? null : product(uses, inner, false);
            if (sub == null) {
                factors.add(v);
            } else {
                factors.addAll(sub.factors());
                scale *= sub.scale();
            }
        }
        return new Product(factors, scale);
    }

    /** Whether {@code v} is {@code 1 + erf(x / sqrt 2)} (or {@code erf(x * 0.70710678) + 1}), read only by the product. */
    private static boolean isOnePlusErfOfScaled(GraphUses uses, ValueRef v, ValueRef x) {
        Node.Apply add = uses.singleUseProducer(v);
        if (add == null || !(add.op() instanceof Op.BinaryScalar a) || a.fn() != BinaryFn.ADD || a.scalar() != 1) return false;
        Node.Apply erf = uses.singleUseProducer(add.inputs().get(0));
        if (erf == null || !(erf.op() instanceof Op.Unary u) || u.fn() != UnaryFn.ERF) return false;
        Node.Apply scaled = uses.singleUseProducer(erf.inputs().get(0));
        if (scaled == null || !(scaled.op() instanceof Op.BinaryScalar s) || !scaled.inputs().get(0).equals(x)) return false;
        double c = switch (s.fn()) {
            case MUL -> s.scalar();
            case DIV -> s.scalarFirst() ? Double.NaN : 1 / s.scalar();
            default -> Double.NaN;
        };
        return Math.abs(c - INV_SQRT2) <= CONSTANT_TOLERANCE;
    }
}
