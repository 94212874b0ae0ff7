package dev.kiln.trace;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphFormat;
import dev.kiln.ir.SizeTemplate;

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
        return rendered == null ? null : GraphFormat.readInferred(rendered);
    }
}
