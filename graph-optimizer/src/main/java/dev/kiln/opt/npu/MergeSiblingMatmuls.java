package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Op;
import dev.kiln.opt.GraphPass;
import dev.kiln.opt.GraphTransformer;
import dev.kiln.opt.PassResult;
import dev.kiln.tensor.DType;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Merges linear layers that read the same activations (a transformer's q, k and v
 * projections) into one matmul against their weights stacked: {@code x @ Wqᵀ},
 * {@code x @ Wkᵀ}, {@code x @ Wvᵀ} become {@code x @ concat(Wq, Wk, Wv)ᵀ}, and each old
 * product a slice (a view) of the new one.
 *
 * <p>Why it pays on the NPU: the activations are packed once instead of once per
 * projection, and the narrow products (k and v of grouped-query attention have a quarter
 * of q's columns) stop leaving a worker idle; stacking the weights costs one copy of them
 * per call, far less than the work saved. Each element of a product is still the same dot
 * product over the same K, so results are unchanged.
 *
 * <p>Merged: float32 matmuls whose left operands are the same value and whose right
 * operands are {@code permute([1, 0])} of 2-D weights with the same K, each permute read
 * only by its matmul, and no product read by an op {@link FuseMatmulEpilogue} would make
 * its epilogue (a slice in between would prevent that). Left alone: a group with a weight
 * that is a graph input and not frozen. A product keeps such a weight packed at its call
 * site ({@code WeightPanels}) and packs nothing of it per call, which a stacked copy made
 * per call would forfeit: the W4 block ran 2 to 6% faster unmerged. Frozen weights are
 * stacked once, and the stack is then kept packed.
 */
public final class MergeSiblingMatmuls implements GraphPass {
    private final Set<Integer> frozenInputs;

    /** The pass for a graph whose inputs at {@code frozenInputs} (indices) are frozen weights. */
    public MergeSiblingMatmuls(Set<Integer> frozenInputs) {
        this.frozenInputs = Set.copyOf(frozenInputs);
    }

    @Override
    public String name() { return "merge-sibling-matmuls"; }

    @Override
    public PassResult run(Graph g) {
        List<List<Integer>> users = FusePointwise.users(g);
        java.util.Set<Integer> returned = new java.util.HashSet<>();
        for (ValueRef v : g.outputs()) returned.add(v.node());

        // Linear layers by their left operand, in graph order.
        Map<ValueRef, List<Node.Apply>> byInput = new LinkedHashMap<>();
        for (Node n : g.nodes()) {
            if (n instanceof Node.Apply ap && isLinear(g, ap, users, returned)) byInput.computeIfAbsent(ap.inputs().get(0), k -> new ArrayList<>()).add(ap);
        }
        Map<Integer, List<Node.Apply>> groupAtFirst = new HashMap<>();
        Map<Integer, Integer> memberOf = new HashMap<>();
        for (List<Node.Apply> linears : byInput.values()) {
            // The stacked weights are built where the first product was: every weight must exist by then.
            int firstId = linears.getFirst().id();
            List<Node.Apply> group = linears.stream().filter(m -> weightNode(g, m) < firstId).toList();
            if (group.size() < 2 || group.getFirst().id() != firstId || group.stream().anyMatch(m -> callersWeight(g, m))) continue;
            groupAtFirst.put(group.getFirst().id(), group);
            for (Node.Apply m : group) memberOf.put(m.id(), group.getFirst().id());
        }
        List<String> details = new ArrayList<>();
        Map<Integer, ValueRef> merged = new HashMap<>();
        Map<Integer, Integer> offsets = new HashMap<>();
        Graph out = GraphTransformer.transform(g, (cx, node) -> {
            Integer first = memberOf.get(node.id());
            if (first == null) {
                cx.copy(node);
                return;
            }
            if (node.id() == first) {
                List<Node.Apply> group = groupAtFirst.get(first);
                List<ValueRef> weights = new ArrayList<>();
                int at = 0;
                StringBuilder what = new StringBuilder();
                for (Node.Apply m : group) {
                    Node.Apply permute = (Node.Apply) g.node(m.inputs().get(1).node());
                    weights.add(cx.value(permute.inputs().get(0)));
                    offsets.put(m.id(), at);
                    at += g.meta(permute.inputs().get(0)).shape().dim(0);
                    what.append(what.isEmpty() ? "" : ", ").append('%').append(m.id());
                }
                ValueRef stacked = cx.emit1(new Op.Concat(0), weights);
                ValueRef product = cx.emit1(new Op.MatMul(), List.of(cx.value(node.inputs().get(0)),
                        cx.emit1(new Op.Permute(List.of(1, 0)), List.of(stacked))));
                merged.put(first, product);
                details.add("matmuls " + what + " share %" + node.inputs().get(0).node() + ": one product of " + at + " columns");
            }
            ValueRef product = merged.get(first);
            int columns = g.meta(node.value(0)).shape().dim(-1), last = cx.meta(product).shape().rank() - 1;
            cx.replace(node, cx.emit1(new Op.Slice(last, offsets.get(node.id()), 1, columns), List.of(product)));
        });
        return new PassResult(out, details.isEmpty() ? "no change" : "merged " + details.size()
                + (details.size() == 1 ? " group" : " groups"), details);
    }

    /** Whether the product's weight is a graph input that is not frozen: the caller's memory, read in place at every call. */
    private boolean callersWeight(Graph g, Node.Apply matmul) {
        return g.node(weightNode(g, matmul)) instanceof Node.Input in && !frozenInputs.contains(in.index());
    }

    private static int weightNode(Graph g, Node.Apply matmul) {
        return ((Node.Apply) g.node(matmul.inputs().get(1).node())).inputs().get(0).node();
    }

    /** {@code x @ Wᵀ} for a 2-D float32 weight, its transpose read only here and no reader of the product a possible epilogue. */
    private static boolean isLinear(Graph g, Node.Apply ap, List<List<Integer>> users, java.util.Set<Integer> returned) {
        if (!(ap.op() instanceof Op.MatMul) || ap.outputs().get(0).dtype() != DType.FLOAT32) return false;
        if (g.meta(ap.inputs().get(0)).shape().rank() < 2) return false;
        if (!(g.node(ap.inputs().get(1).node()) instanceof Node.Apply p) || !(p.op() instanceof Op.Permute perm)
                || !perm.dims().equals(List.of(1, 0)) || users.get(p.id()).size() != 1 || returned.contains(p.id())) {
            return false;
        }
        if (g.meta(p.inputs().get(0)).dtype() != DType.FLOAT32 || g.meta(p.inputs().get(0)).shape().rank() != 2) return false;
        for (int user : users.get(ap.id())) {
            if (FuseMatmulEpilogue.pointwise(g, (Node.Apply) g.node(user), ap.outputs().get(0).shape())) return false;
        }
        return true;
    }
}
