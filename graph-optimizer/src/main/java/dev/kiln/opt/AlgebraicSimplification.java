package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.stream.Collectors;

/**
 * Rewrites ops that provably return (a view of) one of their inputs, or that compose
 * with the op before them, into cheaper forms. Each rewrite gives bit-identical values:
 * <ul>
 * <li>{@code x * 1}, {@code 1 * x}, {@code x / 1}, {@code x ** 1}, {@code x - 0} and
 *     {@code x + (-0.0)}, {@code (-0.0) + x} become {@code x}, where the constant is a
 *     host scalar or a Full whose value, as the kernel loads it into its compute dtype, is
 *     that identity. Only when the result has x's dtype and x's shape: a constant that
 *     broadcasts x to a larger shape ({@code x[3] + zeros[4,3]}) or promotes it
 *     ({@code int32 + int64}, {@code int32 + 0.0}) changes the result and blocks the rewrite.
 * <li>{@code neg(neg(x))} becomes x (negation flips only the sign bit; integers wrap back).
 * <li>a cast to x's own dtype, a {@code contiguous} of a value an op (not a view) has just
 *     produced (fresh outputs are contiguous), a reshape or expand to x's own shape, a slice
 *     of a whole dimension with step 1, and a permute that keeps every dimension in place
 *     become x.
 * <li>a reshape of a reshape becomes one reshape to the last shape; a permute of a permute
 *     becomes one permute (the composition), or x when that is the identity.
 * </ul>
 *
 * <p>Deliberately not rewritten, because the result would differ for some inputs:
 * <ul>
 * <li>{@code x + 0.0} with a positive zero for floating x: {@code -0.0 + 0.0} is
 *     {@code +0.0}, so the sum is not x when x is {@code -0.0} (a later {@code 1 / x}
 *     tells them apart). Integers have one zero, so there {@code x + 0} is x.
 * <li>{@code x * 0 -> 0}: NaN and infinities times 0 are NaN, and {@code -1 * 0} is {@code -0}.
 * <li>{@code x - x -> 0}: NaN and infinities minus themselves are NaN.
 * </ul>
 */
public final class AlgebraicSimplification implements GraphPass {

    @Override
    public String name() { return "algebraic-simplification"; }

    /** A rewrite of one node: the new value replacing its output, and the rule's name. */
    private record Rewrite(ValueRef value, String rule) {}

    @Override
    public PassResult run(Graph graph) {
        List<String> details = new ArrayList<>();
        Graph out = GraphTransformer.transform(graph, (cx, node) -> {
            Rewrite r = node.outputs().size() == 1 ? rewrite(cx, node, cx.values(node.inputs())) : null;
            if (r == null) {
                cx.copy(node);
                return;
            }
            cx.replace(node, r.value());
            details.add("%" + node.id() + " = " + node.op().name()
                    + node.inputs().stream().map(ValueRef::toString).collect(Collectors.joining(", ", "(", ")"))
                    + ": " + r.rule());
        });
        return PassResult.of(out, "simplified", details);
    }

    /** The rewrite of {@code node} over new values {@code args}, or null when none applies. */
    private static Rewrite rewrite(TransformContext cx, Node.Apply node, List<ValueRef> args) {
        TensorMeta result = node.outputs().get(0);
        ValueRef x = args.isEmpty() ? null : args.get(0);
        return switch (node.op()) {
            case Op.Binary b -> binaryIdentity(cx, b, args, result);
            case Op.BinaryScalar s -> scalarIdentity(cx, s, x, result);
            case Op.Unary u when u.fn() == UnaryFn.NEG && cx.producerOp(x) instanceof Op.Unary inner
                    && inner.fn() == UnaryFn.NEG -> new Rewrite(inputOf(cx, x), "neg(neg(x)) is x");
            case Op.Cast c when cx.meta(x).dtype() == c.to() -> new Rewrite(x, "cast to the same dtype");
            case Op.Contiguous c when cx.producerOp(x) != null && !(cx.producerOp(x) instanceof Op.ViewOp) ->
                    new Rewrite(x, "contiguous of a fresh (contiguous) value");
            case Op.Reshape r -> reshape(cx, r.shape(), x);
            case Op.Expand e when cx.meta(x).shape().equals(e.shape()) -> new Rewrite(x, "expand to the same shape");
            case Op.Permute p -> permute(cx, p.dims(), x);
            case Op.Slice s when s.start() == 0 && s.step() == 1 && s.length() == cx.meta(x).shape().dimAt(s.dim()) ->
                    new Rewrite(x, "slice of the whole dimension " + s.dim());
            default -> null;
        };
    }

    // ---------------------------------------------------------------- identities of arithmetic

    private static Rewrite binaryIdentity(TransformContext cx, Op.Binary op, List<ValueRef> args, TensorMeta result) {
        ValueRef a = args.get(0), b = args.get(1);
        DType compute = op.computeType(cx.meta(a).dtype(), cx.meta(b).dtype());
        // x op c, then (for the operations where the constant may come first) c op x.
        OptionalDouble right = loadedFull(cx, b, compute);
        if (right.isPresent() && isIdentity(op.fn(), compute, right.getAsDouble(), false) && cx.meta(a).equals(result)) {
            return new Rewrite(a, ruleName(op.fn(), right.getAsDouble(), false));
        }
        OptionalDouble left = loadedFull(cx, a, compute);
        if (left.isPresent() && isIdentity(op.fn(), compute, left.getAsDouble(), true) && cx.meta(b).equals(result)) {
            return new Rewrite(b, ruleName(op.fn(), left.getAsDouble(), true));
        }
        return null;
    }

    private static Rewrite scalarIdentity(TransformContext cx, Op.BinaryScalar op, ValueRef x, TensorMeta result) {
        DType compute = op.computeType(cx.meta(x).dtype());
        OptionalDouble c = ElementSemantics.loadScalar(compute, op.scalar());
        if (c.isEmpty() || !isIdentity(op.fn(), compute, c.getAsDouble(), op.scalarFirst()) || !cx.meta(x).equals(result)) {
            return null;
        }
        return new Rewrite(x, ruleName(op.fn(), c.getAsDouble(), op.scalarFirst()));
    }

    /** The element of new value {@code v} as a kernel computing in {@code compute} loads it, when v is a Full. */
    private static OptionalDouble loadedFull(TransformContext cx, ValueRef v, DType compute) {
        if (!(cx.producerOp(v) instanceof Op.Full f)) return OptionalDouble.empty();
        OptionalDouble stored = ElementSemantics.fullValue(f);
        return stored.isEmpty() ? stored : OptionalDouble.of(ElementSemantics.load(compute, stored.getAsDouble()));
    }

    /** Whether {@code fn} with constant {@code c} (on the left when {@code constantFirst}) returns the other operand bit for bit. */
    private static boolean isIdentity(BinaryFn fn, DType compute, double c, boolean constantFirst) {
        boolean floating = compute.isFloatingPoint();
        boolean negativeZero = c == 0 && Double.doubleToRawLongBits(c) != 0;
        return switch (fn) {
            // -0.0 is the float additive identity (x + -0.0 is x even for x = -0.0); +0.0 is not.
            case ADD -> c == 0 && (!floating || negativeZero);
            case SUB -> !constantFirst && c == 0 && (!floating || !negativeZero);
            case MUL -> c == 1;
            case DIV, POW -> !constantFirst && c == 1;
            default -> false;
        };
    }

    private static String ruleName(BinaryFn fn, double c, boolean constantFirst) {
        String constant = c == 0 && Double.doubleToRawLongBits(c) != 0 ? "-0.0" : c == 0 ? "0" : "1";
        String symbol = switch (fn) {
            case ADD -> "+";
            case SUB -> "-";
            case MUL -> "*";
            case DIV -> "/";
            default -> "**";
        };
        return (constantFirst ? constant + " " + symbol + " x" : "x " + symbol + " " + constant) + " is x";
    }

    // ---------------------------------------------------------------- views

    private static Rewrite reshape(TransformContext cx, Shape shape, ValueRef x) {
        if (cx.meta(x).shape().equals(shape)) return new Rewrite(x, "reshape to the same shape");
        if (!(cx.producerOp(x) instanceof Op.Reshape)) return null;
        ValueRef source = inputOf(cx, x);
        if (cx.meta(source).shape().equals(shape)) return new Rewrite(source, "reshape of reshape back to the original shape");
        return new Rewrite(cx.emit1(new Op.Reshape(shape), List.of(source)), "reshape of reshape is one reshape");
    }

    private static Rewrite permute(TransformContext cx, List<Integer> dims, ValueRef x) {
        if (isIdentity(dims)) return new Rewrite(x, "permute keeping every dimension in place");
        if (!(cx.producerOp(x) instanceof Op.Permute inner)) return null;
        // permute(permute(s, q), p) takes dimension q[p[i]] of s as dimension i.
        List<Integer> composed = new ArrayList<>(dims.size());
        for (int d : dims) composed.add(inner.dims().get(d));
        ValueRef source = inputOf(cx, x);
        if (isIdentity(composed)) return new Rewrite(source, "permute of permute is the identity");
        return new Rewrite(cx.emit1(new Op.Permute(composed), List.of(source)), "permute of permute is one permute " + composed);
    }

    private static boolean isIdentity(List<Integer> permutation) {
        for (int i = 0; i < permutation.size(); i++) if (permutation.get(i) != i) return false;
        return true;
    }

    /** The (new) input of the single-input node of the new graph producing new value {@code v}. */
    private static ValueRef inputOf(TransformContext cx, ValueRef v) {
        return ((Node.Apply) cx.producer(v)).inputs().get(0);
    }
}
