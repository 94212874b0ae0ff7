package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.DType;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.stream.Collectors;

/**
 * Replaces ops whose inputs are all uniform constants ({@code Full}) by a {@code Full} of
 * the result's shape and dtype:
 * <ul>
 * <li>pointwise ops: {@code Unary}, {@code BinaryScalar}, {@code Binary} of two Fulls
 *     (broadcasting), {@code Cast} and {@code Clamp}: the element value is computed as the
 *     kernel computes it and rounded to the result dtype as a store rounds it (see
 *     {@link ElementSemantics});
 * <li>views and copies of a Full ({@code Reshape}, {@code Expand}, {@code Permute},
 *     {@code Slice}, {@code Diagonal}, {@code Contiguous}): a Full of the new shape with the
 *     same value, since every element of a uniform tensor is the same.
 * </ul>
 *
 * <p>Safe because the folded Full fills exactly the elements the op would have computed.
 * Where that value is not known exactly, the op is left alone: an integer division by zero
 * or a negative integer power (the error must still happen at run time), an integer clamp
 * with a NaN bound, a float-to-int32 conversion out of range, an int64 beyond what a
 * double holds. An op with an empty result folds to an empty Full (no element is computed,
 * so none can fail), unless its kernel rejects the op before looking at elements (an
 * integer clamp with a NaN bound). For float32 transcendental functions (exp, tanh, ...)
 * the folded value is the correctly rounded one, within the kernels' few-ulp error.
 *
 * <p>Non-uniform constants ({@code Arange}) and ops over them are left alone: folding
 * them would need a data-carrying constant node, which the IR does not have.
 */
public final class ConstantFolding implements GraphPass {

    @Override
    public String name() { return "constant-folding"; }

    @Override
    public PassResult run(Graph graph) {
        List<String> details = new ArrayList<>();
        Graph out = GraphTransformer.transform(graph, (cx, node) -> {
            Op.Full folded = fold(cx, node);
            if (folded == null) {
                cx.copy(node);
                return;
            }
            cx.replace(node, cx.emit1(folded, List.of()));
            details.add("%" + node.id() + " = " + node.op().name()
                    + node.inputs().stream().map(ValueRef::toString).collect(Collectors.joining(", ", "(", ")"))
                    + " -> full(" + folded.value() + ")");
        });
        return PassResult.of(out, "folded", details);
    }

    /** The Full that {@code node} computes, or null when its inputs are not all Fulls or the value is not known exactly. */
    private static Op.Full fold(TransformContext cx, Node.Apply node) {
        if (node.inputs().isEmpty() || node.outputs().size() != 1) return null;
        List<Op.Full> in = new ArrayList<>(node.inputs().size());
        for (ValueRef v : cx.values(node.inputs())) {
            if (!(cx.producerOp(v) instanceof Op.Full f)) return null;
            in.add(f);
        }
        TensorMeta result = node.outputs().get(0);
        OptionalDouble value = value(node.op(), in, result);
        return value.isEmpty() ? null : new Op.Full(result.shape(), result.dtype(), value.getAsDouble());
    }

    /** The element value of {@code op} over uniform inputs {@code in}, when this pass folds the op and knows it exactly. */
    private static OptionalDouble value(Op op, List<Op.Full> in, TensorMeta result) {
        Op.Full x = in.get(0);
        boolean pointwise = op instanceof Op.Unary || op instanceof Op.BinaryScalar || op instanceof Op.Binary
                || op instanceof Op.Cast || op instanceof Op.Clamp;
        if (op instanceof Op.ViewOp || op instanceof Op.Contiguous) return OptionalDouble.of(x.value());
        if (!pointwise) return OptionalDouble.empty();
        // An empty result has no element to compute, so no value matters and no element can fail;
        // only the checks a kernel makes before looking at elements still apply.
        if (result.shape().numel() == 0) {
            return ElementSemantics.rejectsBeforeElements(op, x.dtype()) ? OptionalDouble.empty() : OptionalDouble.of(0);
        }
        OptionalDouble a = ElementSemantics.fullValue(x);
        if (a.isEmpty()) return a;
        double xv = a.getAsDouble();
        DType out = result.dtype();
        return switch (op) {
            case Op.Unary u -> ElementSemantics.unary(u.fn(), x.dtype(), xv, out);
            case Op.BinaryScalar s -> ElementSemantics.binaryScalar(s, x.dtype(), xv, out);
            case Op.Cast c -> ElementSemantics.cast(x.dtype(), xv, c.to());
            case Op.Clamp c -> ElementSemantics.clamp(c, x.dtype(), xv);
            case Op.Binary b -> {
                Op.Full y = in.get(1);
                OptionalDouble yv = ElementSemantics.fullValue(y);
                yield yv.isEmpty() ? yv : ElementSemantics.binary(b, x.dtype(), xv, y.dtype(), yv.getAsDouble(), out);
            }
            default -> OptionalDouble.empty();
        };
    }
}
