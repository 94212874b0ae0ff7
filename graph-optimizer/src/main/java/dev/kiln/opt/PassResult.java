package dev.kiln.opt;

import dev.kiln.ir.Graph;

import java.util.List;

/**
 * What one pass made of a graph: the new graph, a one-line summary ("folded 3 nodes")
 * and one line per change ("%4 = mul(%2, %3): x * 1 is x"). Value names in the
 * details are those of the pass's input graph, since the output graph renumbers.
 */
public record PassResult(Graph graph, String summary, List<String> details) {
    public PassResult {
        details = List.copyOf(details);
    }

    /** The result of a pass that changed {@code details.size()} nodes in the way {@code verb} says ("removed"). */
    public static PassResult of(Graph graph, String verb, List<String> details) {
        int n = details.size();
        return new PassResult(graph, n == 0 ? "no change" : verb + " " + n + (n == 1 ? " node" : " nodes"), details);
    }
}
