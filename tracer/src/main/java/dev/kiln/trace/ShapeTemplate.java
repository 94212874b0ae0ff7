package dev.kiln.trace;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.GraphFormat;
import dev.kiln.ir.Node;
import dev.kiln.ir.SizeTemplate;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.TensorMeta;

import java.util.List;

/**
 * A graph whose sizes are polynomials in symbolic dimensions: a {@link SizeTemplate} of
 * its canonical text, learned from traces at several sizes. Instantiating at new sizes
 * renders the text and re-checks every node with the op registry's shape inference, so a
 * template never yields a graph its ops would reject.
 */
final class ShapeTemplate {
    private final SizeTemplate text;

    private ShapeTemplate(SizeTemplate text) {
        this.text = text;
    }

    /** The symbol values to trace at, base first (see {@link SizeTemplate#samplePoints}). */
    static List<long[]> samplePoints(long[] base) {
        return SizeTemplate.samplePoints(base);
    }

    /**
     * Fits a template to graphs traced at {@link #samplePoints}; null when the traces
     * differ in structure or a size is not such a polynomial.
     */
    static ShapeTemplate fit(List<Graph> graphs, long[] base) {
        SizeTemplate t = SizeTemplate.fit(graphs.stream().map(Graph::canonicalText).toList(), base);
        return t == null ? null : new ShapeTemplate(t);
    }

    /** The graph at these symbol values, or null if some op rejects the sizes. */
    Graph instantiate(long[] symbolValues) {
        String rendered = text.render(symbolValues);
        if (rendered == null) return null;
        try {
            return revalidate(GraphFormat.read(rendered));
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** Rebuilds a graph through shape inference; null when an instantiated size disagrees with it. */
    private static Graph revalidate(Graph g) {
        GraphBuilder b = new GraphBuilder();
        for (Node n : g.nodes()) {
            switch (n) {
                case Node.Input in -> b.input(in.meta());
                case Node.Apply ap -> {
                    List<ValueRef> out = b.apply(ap.op(), ap.inputs());
                    for (int i = 0; i < out.size(); i++) {
                        TensorMeta inferred = b.meta(out.get(i));
                        if (!inferred.equals(ap.outputs().get(i))) return null;
                    }
                }
            }
        }
        return b.build(g.outputs());
    }
}
