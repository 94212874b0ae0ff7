package dev.kiln.trace;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.GraphFormat;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.TensorMeta;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A graph whose sizes are affine functions of symbolic dimensions, learned from traces
 * at several sizes. Every integer of the canonical text (shapes, slice bounds, reshape
 * targets, ...) is fitted as {@code c + sum(a_k * s_k)}; anything else must agree
 * between the traces. Instantiating at new sizes renders the text and re-checks every
 * node with the op registry's shape inference, so a template never yields a graph its
 * ops would reject.
 */
final class ShapeTemplate {
    /** A literal piece of the canonical text, or an integer given by an affine expression. */
    private record Token(String literal, long constant, long[] coefficients) {
        boolean isLiteral() { return literal != null; }
    }

    private final List<Token> tokens;
    private final int symbols;

    private ShapeTemplate(List<Token> tokens, int symbols) {
        this.tokens = tokens;
        this.symbols = symbols;
    }

    /**
     * Fits a template to graphs traced at the given symbol values: samples[0] is the base,
     * samples[1..k] each move one symbol, the last moves all (a check of the fit). Returns
     * null when the traces differ in structure or a size is not affine in the symbols.
     */
    static ShapeTemplate fit(List<Graph> graphs, List<long[]> samples) {
        int symbols = samples.get(0).length;
        List<List<String>> split = new ArrayList<>();
        for (Graph g : graphs) split.add(tokenize(g.canonicalText()));
        int n = split.get(0).size();
        for (List<String> s : split) if (s.size() != n) return null;
        List<Token> tokens = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            String base = split.get(0).get(i);
            if (!isInteger(base)) {
                for (List<String> s : split) if (!s.get(i).equals(base)) return null;
                tokens.add(new Token(base, 0, null));
                continue;
            }
            long[] values = new long[graphs.size()];
            for (int g = 0; g < values.length; g++) {
                if (!isInteger(split.get(g).get(i))) return null;
                values[g] = Long.parseLong(split.get(g).get(i));
            }
            Token t = fitAffine(values, samples, symbols);
            if (t == null) return null;
            tokens.add(t);
        }
        return new ShapeTemplate(tokens, symbols);
    }

    private static Token fitAffine(long[] values, List<long[]> samples, int symbols) {
        long[] base = samples.get(0);
        long[] coeff = new long[symbols];
        boolean constant = true;
        for (int k = 0; k < symbols; k++) {
            long dv = values[k + 1] - values[0], ds = samples.get(k + 1)[k] - base[k];
            if (dv % ds != 0) return null;
            coeff[k] = dv / ds;
            constant &= coeff[k] == 0;
        }
        long c = values[0];
        for (int k = 0; k < symbols; k++) c -= coeff[k] * base[k];
        for (int g = 0; g < values.length; g++) {
            if (eval(c, coeff, samples.get(g)) != values[g]) return null;
        }
        return constant ? new Token(Long.toString(values[0]), 0, null) : new Token(null, c, coeff);
    }

    private static long eval(long c, long[] coeff, long[] s) {
        long v = c;
        for (int k = 0; k < coeff.length; k++) v += coeff[k] * s[k];
        return v;
    }

    /** The graph at these symbol values, or null if some op rejects the sizes. */
    Graph instantiate(long[] symbolValues) {
        if (symbolValues.length != symbols) throw new IllegalArgumentException("expected " + symbols + " symbol values");
        StringBuilder sb = new StringBuilder();
        for (Token t : tokens) {
            if (t.isLiteral()) sb.append(t.literal());
            else {
                long v = eval(t.constant(), t.coefficients(), symbolValues);
                if (v < 0) return null;
                sb.append(v);
            }
        }
        try {
            return revalidate(GraphFormat.read(sb.toString()));
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

    /**
     * Integers of the canonical text: not part of a name ("float32"), a value
     * reference's output index ("%6.2") or a double ("1.0E-5").
     */
    private static final Pattern INTEGER = Pattern.compile("(?<![\\w.])-\\d+(?![\\w.])|(?<![\\w.\\-])\\d+(?![\\w.])");

    /** Splits into integers and the literal text between them. */
    private static List<String> tokenize(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = INTEGER.matcher(text);
        int at = 0;
        while (m.find()) {
            if (m.start() > at) out.add(text.substring(at, m.start()));
            out.add(m.group());
            at = m.end();
        }
        if (at < text.length()) out.add(text.substring(at));
        return out;
    }

    private static boolean isInteger(String s) {
        if (s.isEmpty()) return false;
        int i = s.charAt(0) == '-' ? 1 : 0;
        if (i == s.length()) return false;
        for (; i < s.length(); i++) if (!Character.isDigit(s.charAt(i))) return false;
        return true;
    }
}
