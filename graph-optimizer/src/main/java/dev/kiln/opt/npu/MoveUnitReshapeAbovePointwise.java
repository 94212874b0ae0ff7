package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Op;
import dev.kiln.opt.GraphPass;
import dev.kiln.opt.GraphTransformer;
import dev.kiln.opt.GraphUses;
import dev.kiln.opt.PassResult;
import dev.kiln.tensor.Shape;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Moves a reshape that only inserts or removes dimensions of size 1 (an unsqueeze or squeeze)
 * above the elementwise op it reads: {@code reshape(f(a, b))} becomes
 * {@code f(reshape(a), reshape(b))}. The values are the same, element for element; what
 * changes is that {@code f} now has the shape its consumer broadcasts, so
 * {@link FusePointwise} can compute a cheap {@code f} inside the consumer's kernel instead of
 * launching it on its own (a rotary embedding's {@code positions.float().unsqueeze(1) * freqs}
 * is one kernel, not a cast and then the tables).
 *
 * <p>Moved: a reshape whose input is read by nothing else, made by an op cheap enough to
 * recompute ({@link FusePointwise#cheap}: a cast, clamp, select, add, multiply, ...) whose tensor
 * operands all have its output's shape (0-d operands stay as they are). Left in place: a
 * reshape of a matmul's epilogue chain ({@link FuseMatmulEpilogue}), which a view between the
 * product and the chain would cut. A reshape of unit dimensions is a view of any layout, so the
 * new reshapes cost nothing.
 */
public final class MoveUnitReshapeAbovePointwise implements GraphPass {
    @Override
    public String name() { return "move-unit-reshape-above-pointwise"; }

    @Override
    public PassResult run(Graph g) {
        GraphUses uses = new GraphUses(g);
        Set<Integer> epilogues = new HashSet<>();
        for (FuseMatmulEpilogue.Group m : FuseMatmulEpilogue.groups(g)) epilogues.addAll(m.chain());
        List<String> details = new ArrayList<>();
        Graph out = GraphTransformer.transform(g, (cx, node) -> {
            Node.Apply producer = movable(g, node, uses, epilogues);
            if (producer == null) {
                cx.copy(node);
                return;
            }
            Op.Reshape reshape = (Op.Reshape) node.op();
            List<ValueRef> args = new ArrayList<>();
            for (ValueRef v : producer.inputs()) {
                ValueRef now = cx.value(v);
                args.add(g.meta(v).shape().rank() == 0 ? now : cx.emit1(reshape, List.of(now)));
            }
            cx.replace(node, cx.emit1(producer.op(), args));
            details.add("%" + node.id() + " (reshape to " + reshape.shape() + ") of %" + producer.id() + " (" + producer.op().name()
                    + ") moved to its operands");
        });
        return PassResult.of(out, "moved", details);
    }

    /** The elementwise producer {@code node} can move above, or null. */
    private static Node.Apply movable(Graph g, Node.Apply node, GraphUses uses, Set<Integer> epilogues) {
        if (!(node.op() instanceof Op.Reshape reshape)) return null;
        ValueRef in = node.inputs().getFirst();
        Node.Apply producer = uses.singleUseProducer(in);
        if (producer == null || !FusePointwise.cheap(producer.op()) || epilogues.contains(producer.id())) return null;
        Shape shape = g.meta(in).shape();
        if (!sameNonUnitDims(shape, reshape.shape())) return null;
        for (ValueRef v : producer.inputs()) {
            Shape s = g.meta(v).shape();
            if (s.rank() != 0 && !s.equals(shape)) return null;
        }
        return producer;
    }

    /** Whether {@code a} and {@code b} list the same sizes once their 1s are dropped. */
    static boolean sameNonUnitDims(Shape a, Shape b) {
        int i = 0, j = 0;
        while (true) {
            while (i < a.rank() && a.dimAt(i) == 1) i++;
            while (j < b.rank() && b.dimAt(j) == 1) j++;
            if (i == a.rank() || j == b.rank()) return i == a.rank() && j == b.rank();
            if (a.dimAt(i++) != b.dimAt(j++)) return false;
        }
    }
}
