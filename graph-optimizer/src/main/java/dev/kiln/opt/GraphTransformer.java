package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;

/**
 * Builds a new graph from an old one, node by node, in the style of OpenJDK Babylon's
 * code transformers: the old graph's nodes are walked in order and a per-node
 * {@link NodeTransform} decides what the new graph gets in its place, through a
 * {@link TransformContext} that holds the new graph under construction and the map from
 * old values to new ones.
 *
 * <p>Graph inputs are always copied, in order, so input indices never change (callers
 * bind arguments by index). The graph outputs are remapped at the end. The old graph is
 * never changed.
 */
public final class GraphTransformer {
    private GraphTransformer() {}

    /**
     * What the new graph holds in place of one op node. It must do exactly one of:
     * {@link TransformContext#copy copy} the node, {@link TransformContext#replace replace}
     * its outputs by values already in the new graph (possibly ones it just
     * {@link TransformContext#emit emitted}), or {@link TransformContext#drop drop} it.
     */
    @FunctionalInterface
    public interface NodeTransform {
        void apply(TransformContext context, Node.Apply node);
    }

    /** The node-by-node copy of {@code source} that {@code transform} makes; see the class comment. */
    public static Graph transform(Graph source, NodeTransform transform) {
        TransformContext context = new TransformContext(source);
        for (Node n : source.nodes()) {
            switch (n) {
                case Node.Input in -> context.copyInput(in);
                case Node.Apply ap -> {
                    context.begin(ap);
                    transform.apply(context, ap);
                    context.end(ap);
                }
            }
        }
        return context.build();
    }

    /** The identity transform: a graph equal to {@code source}. */
    public static Graph copy(Graph source) {
        return transform(source, TransformContext::copy);
    }
}
