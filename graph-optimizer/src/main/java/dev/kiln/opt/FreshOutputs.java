package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Op;

import java.util.ArrayList;
import java.util.List;

/**
 * The last step of a {@link Pipeline}: an output that the traced graph computes, but that the
 * passes turned into a graph input or a view of one ({@code x.neg().neg()} is {@code x},
 * {@code x * 1} is {@code x}), is copied into fresh memory. Eagerly the caller gets a new
 * tensor there, and one that shares the input's memory would change when the input is
 * written later (an in-place op, a marked write). Outputs the traced graph itself returns
 * as inputs or views of them stay so.
 */
final class FreshOutputs {
    static final String NAME = "fresh-outputs";

    private FreshOutputs() {}

    static PassResult apply(Graph traced, Graph optimised) {
        List<Integer> copies = new ArrayList<>();
        for (int i = 0; i < optimised.outputs().size(); i++) {
            if (aliasesInput(optimised, optimised.outputs().get(i)) && !aliasesInput(traced, traced.outputs().get(i))) copies.add(i);
        }
        if (copies.isEmpty()) return PassResult.of(optimised, "copied", List.of());
        GraphBuilder b = new GraphBuilder();
        for (Node n : optimised.nodes()) {
            switch (n) {
                case Node.Input in -> b.input(in.meta());
                case Node.Apply ap -> b.apply(ap.op(), ap.inputs(), ap.outputs());
            }
        }
        List<ValueRef> outputs = new ArrayList<>(optimised.outputs());
        List<String> details = new ArrayList<>();
        // One copy per value, as common-subexpression elimination would leave it: the graph's own, if it has one.
        java.util.Map<ValueRef, ValueRef> copyOf = new java.util.HashMap<>();
        for (Node n : optimised.nodes()) {
            if (n instanceof Node.Apply ap && ap.op() instanceof Op.Contiguous) copyOf.putIfAbsent(ap.inputs().getFirst(), ap.value(0));
        }
        for (int i : copies) {
            ValueRef v = outputs.get(i);
            ValueRef copy = copyOf.get(v);
            String what = "output " + i + " (traced as %" + traced.outputs().get(i).node() + ") became " + v + ", the memory of an input: ";
            if (copy == null) {
                copy = b.apply(new Op.Contiguous(), List.of(v), List.of(b.meta(v))).getFirst();
                copyOf.put(v, copy);
                details.add(what + "copied into memory of its own");
            } else {
                details.add(what + "returns the copy " + copy + " instead");
            }
            outputs.set(i, copy);
        }
        return new PassResult(b.build(outputs), details.size() == 1 ? "1 output copied" : details.size() + " outputs copied", details);
    }

    /** Whether {@code v} is a graph input or a view of one. */
    private static boolean aliasesInput(Graph g, ValueRef v) {
        Node n = g.node(v.node());
        while (n instanceof Node.Apply ap && ap.op() instanceof Op.ViewOp) n = g.node(ap.inputs().getFirst().node());
        return n instanceof Node.Input;
    }
}
