package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.npu.kernels.gemm.Epilogue;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Finds float32 matmuls followed by a chain of pointwise ops that can run as the
 * matmul's epilogue, on each block of the product while it is still in cache (a linear
 * layer's bias add and activation, a residual add): the matmul's result, and each value
 * of the chain but the last, has the next op of the chain as its only user; each op is
 * float32 {@code Unary}, {@code Binary}, {@code BinaryScalar}, {@code Clamp} or a
 * float32-to-float32 {@code Cast} producing the product's shape; and its other operands
 * are 0-d, of the product's shape, or a row of N values ([N], [1, N], ...) broadcast over
 * the rows. The single users also mean no operand can be computed from the matmul (it
 * would have to go through the chain, and so be its own ancestor): every operand exists
 * before the fused launch.
 */
public final class FuseMatmulEpilogue {
    private FuseMatmulEpilogue() {}

    /**
     * A matmul with its epilogue chain: {@code operands} are the chain's inputs other than
     * the product, in the order of the epilogue program's inputs after it, each with its
     * {@code sources} entry; {@code output} is the chain's last value.
     */
    public record Group(int matmul, List<Integer> chain, List<ValueRef> operands, List<Epilogue.Source> sources, ValueRef output) {
        public Group {
            chain = List.copyOf(chain);
            operands = List.copyOf(operands);
            sources = List.copyOf(sources);
        }

        /** Every node of the group, the matmul first. */
        public List<Integer> nodes() {
            List<Integer> all = new ArrayList<>(List.of(matmul));
            all.addAll(chain);
            return all;
        }

        /** {@code %2 [%4 %5] in (%3 row) out %5}: for listings and tests. */
        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("%" + matmul + " " + chain.stream().map(n -> "%" + n).toList().toString().replace(",", "") + " in (");
            for (int i = 0; i < operands.size(); i++) sb.append(i == 0 ? "" : ", ").append(operands.get(i)).append(' ').append(sources.get(i).token());
            return sb.append(") out ").append(output).toString();
        }
    }

    /** The matmul epilogue groups of {@code g}, in graph order of their matmuls; no node is in two. */
    public static List<Group> groups(Graph g) {
        List<List<Integer>> users = FusePointwise.users(g);
        Set<ValueRef> graphOutputs = new HashSet<>(g.outputs());
        List<Group> out = new ArrayList<>();
        Set<Integer> claimed = new HashSet<>();
        for (Node node : g.nodes()) {
            if (node instanceof Node.Apply ap && isFloatMatmul(g, ap)) {
                Group grp = chain(g, ap, users, graphOutputs, claimed);
                if (grp != null) {
                    out.add(grp);
                    claimed.addAll(grp.chain());
                }
            }
        }
        return out;
    }

    private static boolean isFloatMatmul(Graph g, Node.Apply ap) {
        return ap.op() instanceof Op.MatMul && ap.outputs().get(0).dtype() == DType.FLOAT32 && ap.outputs().get(0).shape().rank() >= 1
                && ap.inputs().stream().allMatch(v -> g.meta(v).dtype() == DType.FLOAT32);
    }

    /** The chain after {@code matmul}, none of its nodes {@code claimed} by an earlier matmul's (as both products of a gated unit feed one multiply); null if empty. */
    private static Group chain(Graph g, Node.Apply matmul, List<List<Integer>> users, Set<ValueRef> graphOutputs, Set<Integer> claimed) {
        Shape shape = matmul.outputs().get(0).shape();
        int n = shape.dims()[shape.rank() - 1];
        List<Integer> chain = new ArrayList<>();
        Set<ValueRef> operands = new LinkedHashSet<>();
        ValueRef v = matmul.value(0);
        while (!graphOutputs.contains(v)) {
            List<Integer> next = users.get(v.node()).stream().distinct().toList();
            if (next.size() != 1 || claimed.contains(next.get(0)) || !(g.node(next.get(0)) instanceof Node.Apply c) || !pointwise(g, c, shape)) {
                break;
            }
            List<ValueRef> others = new ArrayList<>();
            boolean ok = true;
            for (ValueRef in : c.inputs()) {
                if (in.equals(v)) continue;
                ok &= source(g.meta(in), shape, n) != null;
                others.add(in);
            }
            if (!ok) break;
            chain.add(c.id());
            operands.addAll(others);
            v = c.value(0);
        }
        if (chain.isEmpty()) return null;
        List<ValueRef> ops = List.copyOf(operands);
        return new Group(matmul.id(), chain, ops, ops.stream().map(o -> source(g.meta(o), shape, n)).toList(), v);
    }

    /** A float32 pointwise op whose result has the product's shape. */
    static boolean pointwise(Graph g, Node.Apply c, Shape shape) {
        if (c.outputs().size() != 1) return false;
        TensorMeta out = c.outputs().get(0);
        if (out.dtype() != DType.FLOAT32 || !out.shape().equals(shape)) return false;
        if (!c.inputs().stream().allMatch(in -> g.meta(in).dtype() == DType.FLOAT32)) return false;
        return switch (c.op()) {
            case Op.Unary u -> true;
            case Op.Binary b -> true;
            case Op.BinaryScalar s -> true;
            case Op.Clamp cl -> true;
            case Op.Cast cast -> cast.to() == DType.FLOAT32;
            default -> false;
        };
    }

    /** How an operand of this metadata reaches the epilogue of a product of {@code shape} (last dimension n); null if it cannot. */
    private static Epilogue.Source source(TensorMeta m, Shape shape, int n) {
        if (m.dtype() != DType.FLOAT32) return null;
        Shape s = m.shape();
        if (s.rank() == 0) return Epilogue.Source.SCALAR;
        if (s.equals(shape)) return Epilogue.Source.FULL;
        boolean row = s.rank() <= shape.rank() && s.dims()[s.rank() - 1] == n && s.numel() == n;
        return row ? Epilogue.Source.ROW : null;
    }
}
