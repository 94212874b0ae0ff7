package dev.kiln.opt.npu;

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
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Groups a graph's float32 elementwise ops into fusion groups: connected sets of
 * {@code Unary}, {@code Binary}, {@code BinaryScalar}, {@code Clamp}, {@code Where} and
 * {@code Cast}-to-float32 nodes (from any dtype) of one output shape, whose operands are of that
 * shape, 0-d (they become scalars of the tile program) or of a shape that broadcasts to it
 * (a bias per column, a value per row: the kernel's DMA reads them through strides of 0,
 * see {@code FusedKernel}). A value computed in a group and used outside it (or returned)
 * becomes an output of the group. Cheap producers of a smaller shape that broadcasts to the
 * group's, read only inside it, join it too and are computed for every element (see
 * {@link MoveUnitReshapeAbovePointwise}, which brings a cast before an unsqueeze to the
 * shape of its broadcasting consumer).
 *
 * <p>Groups grow greedily in topological order: a node joins the groups of its fusible
 * producers unless that would make the graph of groups cyclic (a path that leaves the
 * group through another op and comes back), which would leave no order to run them in.
 */
public final class FusePointwise {
    private FusePointwise() {}

    /** One fusion group: its nodes in graph order, the values it reads and those it must write. */
    public record Group(Shape shape, List<Integer> nodes, List<ValueRef> inputs, List<ValueRef> outputs) {
        public Group {
            nodes = List.copyOf(nodes);
            inputs = List.copyOf(inputs);
            outputs = List.copyOf(outputs);
        }

        /** {@code [%3 %4 %5] in (%0, %1) out (%5)}: for listings and tests. */
        @Override
        public String toString() {
            return nodes.stream().map(n -> "%" + n).toList().toString().replace(",", "")
                    + " in " + inputs.toString().replace("[", "(").replace("]", ")")
                    + " out " + outputs.toString().replace("[", "(").replace("]", ")");
        }
    }

    /** True when {@code n} can be part of a fused float32 pointwise kernel. */
    public static boolean fusible(Graph g, Node n) {
        if (!(n instanceof Node.Apply ap) || ap.outputs().size() != 1) return false;
        TensorMeta out = ap.outputs().get(0);
        if (out.dtype() != DType.FLOAT32) return false;
        List<TensorMeta> in = ap.inputs().stream().map(g::meta).toList();
        boolean floatOperands = switch (ap.op()) {
            case Op.Unary u -> in.get(0).dtype() == DType.FLOAT32;
            case Op.Binary b -> in.get(0).dtype() == DType.FLOAT32 && in.get(1).dtype() == DType.FLOAT32;
            case Op.BinaryScalar s -> in.get(0).dtype() == DType.FLOAT32;
            case Op.Clamp c -> in.get(0).dtype() == DType.FLOAT32;
            case Op.Where w -> in.get(0).dtype() == DType.BOOL && in.get(1).dtype() == DType.FLOAT32 && in.get(2).dtype() == DType.FLOAT32;
            case Op.Cast c -> c.to() == DType.FLOAT32; // from any dtype: the DMA converts as it loads
            default -> false;
        };
        // Every operand broadcasts to the output (the ops' shape rule), so any shape can be read by the kernel.
        return floatOperands;
    }

    /** The fusion groups of {@code g}, ordered by their first node; every fusible node is in exactly one. */
    public static List<Group> groups(Graph g) {
        return groups(g, Set.of());
    }

    /** {@link #groups(Graph)} leaving out the nodes in {@code claimed} (fused elsewhere, as matmul epilogues). */
    public static List<Group> groups(Graph g, Set<Integer> claimed) {
        int n = g.nodes().size();
        List<List<Integer>> users = users(g);
        int[] unit = new int[n];
        for (int i = 0; i < n; i++) unit[i] = i;
        boolean[] fusible = new boolean[n];
        for (Node node : g.nodes()) fusible[node.id()] = !claimed.contains(node.id()) && fusible(g, node);
        Set<Integer> returned = new HashSet<>();
        for (ValueRef v : g.outputs()) returned.add(v.node());
        for (Node node : g.nodes()) {
            if (!fusible[node.id()]) continue;
            Shape shape = node.outputs().get(0).shape();
            for (ValueRef v : ((Node.Apply) node).inputs()) {
                int p = v.node();
                if (!fusible[p] || unit[p] == unit[node.id()]) continue;
                if (!g.node(p).outputs().get(0).shape().equals(shape) && !recomputable(g, unit, unit[p], unit[node.id()], shape, users, returned)) {
                    continue;
                }
                int[] merged = unit.clone();
                int from = unit[p], to = unit[node.id()];
                for (int i = 0; i < n; i++) if (merged[i] == from) merged[i] = to;
                if (acyclic(merged, users)) unit = merged;
            }
        }
        List<Group> out = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        for (Node node : g.nodes()) {
            if (fusible[node.id()] && seen.add(unit[node.id()])) out.add(group(g, unit, unit[node.id()], users));
        }
        return out;
    }

    /**
     * Whether the nodes of unit {@code from} can be computed again for every element of a
     * consumer of shape {@code shape} in unit {@code to}: all cheap, all of shapes that
     * broadcast to it, and read only inside the two units (so none becomes an output of the
     * wrong shape). A per-row cast or scale then costs an instruction per element instead of
     * a launch and a buffer.
     */
    private static boolean recomputable(Graph g, int[] unit, int from, int to, Shape shape, List<List<Integer>> users,
                                        Set<Integer> returned) {
        for (int i = 0; i < unit.length; i++) {
            if (unit[i] != from) continue;
            Node.Apply ap = (Node.Apply) g.node(i);
            if (!cheap(ap.op()) || returned.contains(i) || !ap.outputs().get(0).shape().broadcastsTo(shape)) return false;
            for (int u : users.get(i)) if (unit[u] != from && unit[u] != to) return false;
        }
        return true;
    }

    /** An elementwise op of an instruction or two per element: worth recomputing per broadcast element. */
    static boolean cheap(Op op) {
        return switch (op) {
            case Op.Cast c -> true;
            case Op.Clamp c -> true;
            case Op.Where w -> true;
            case Op.Unary u -> u.fn() == UnaryFn.NEG || u.fn() == UnaryFn.ABS || u.fn() == UnaryFn.RELU;
            case Op.Binary b -> cheap(b.fn());
            case Op.BinaryScalar b -> cheap(b.fn());
            default -> false;
        };
    }

    private static boolean cheap(BinaryFn fn) {
        return fn == BinaryFn.ADD || fn == BinaryFn.SUB || fn == BinaryFn.MUL || fn == BinaryFn.MINIMUM || fn == BinaryFn.MAXIMUM;
    }

    private static Group group(Graph g, int[] unit, int id, List<List<Integer>> users) {
        List<Integer> nodes = new ArrayList<>();
        for (int i = 0; i < unit.length; i++) if (unit[i] == id) nodes.add(i);
        Set<ValueRef> inputs = new LinkedHashSet<>();
        List<ValueRef> outputs = new ArrayList<>();
        Set<ValueRef> graphOutputs = new HashSet<>(g.outputs());
        for (int i : nodes) {
            for (ValueRef v : ((Node.Apply) g.node(i)).inputs()) if (unit[v.node()] != id) inputs.add(v);
            ValueRef v = new ValueRef(i, 0);
            boolean usedOutside = users.get(i).stream().anyMatch(u -> unit[u] != id);
            if (usedOutside || graphOutputs.contains(v)) outputs.add(v);
        }
        // The last node has the group's shape: a recomputed smaller node is read by a later one in the group.
        return new Group(g.node(nodes.getLast()).outputs().get(0).shape(), nodes, List.copyOf(inputs), outputs);
    }

    static List<List<Integer>> users(Graph g) {
        List<List<Integer>> users = new ArrayList<>();
        for (int i = 0; i < g.nodes().size(); i++) users.add(new ArrayList<>());
        for (Node node : g.nodes()) {
            if (node instanceof Node.Apply ap) for (ValueRef v : ap.inputs()) users.get(v.node()).add(node.id());
        }
        return users;
    }

    /** Whether the graph of units (nodes merged into their unit) has no cycle: Kahn's algorithm. */
    private static boolean acyclic(int[] unit, List<List<Integer>> users) {
        int n = unit.length;
        List<Set<Integer>> succ = new ArrayList<>();
        for (int i = 0; i < n; i++) succ.add(new HashSet<>());
        int[] indegree = new int[n];
        for (int i = 0; i < n; i++) {
            for (int u : users.get(i)) {
                if (unit[u] != unit[i] && succ.get(unit[i]).add(unit[u])) indegree[unit[u]]++;
            }
        }
        ArrayList<Integer> ready = new ArrayList<>();
        int units = 0;
        for (int i = 0; i < n; i++) {
            if (unit[i] == i) {
                units++;
                if (indegree[i] == 0) ready.add(i);
            }
        }
        int done = 0;
        while (!ready.isEmpty()) {
            int u = ready.removeLast();
            done++;
            for (int s : succ.get(u)) if (--indegree[s] == 0) ready.add(s);
        }
        return done == units;
    }
}
