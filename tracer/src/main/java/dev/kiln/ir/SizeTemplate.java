package dev.kiln.ir;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A text (a graph's canonical form, a kernel program) whose integers are polynomials of
 * degree 2 at most in symbolic sizes, learned from the texts produced at several sizes.
 * Every integer is fitted as {@code v0 + sum(a_k d_k) + sum(b_k d_k^2) + sum(c_kl d_k d_l)}
 * with {@code d = s - base}, which covers products such as {@code reshape(batch * seq, dim)}
 * and {@code seq * seq}; the rest of the text must agree between the samples. Rendering at
 * other sizes evaluates the polynomials, so whoever reads the text back must check it.
 */
public final class SizeTemplate {
    /** A literal piece of the text, or an integer given by a polynomial in the symbol offsets. */
    private record Token(String literal, long v0, long[] linear, long[] square, long[][] cross) {
        boolean isLiteral() { return literal != null; }

        long eval(long[] d) {
            long v = v0;
            for (int k = 0; k < d.length; k++) {
                v += linear[k] * d[k] + square[k] * d[k] * d[k];
                for (int l = k + 1; l < d.length; l++) v += cross[k][l] * d[k] * d[l];
            }
            return v;
        }
    }

    private final List<Token> tokens;
    private final long[] base;

    private SizeTemplate(List<Token> tokens, long[] base) {
        this.tokens = tokens;
        this.base = base;
    }

    /**
     * The symbol values to take samples at, base first: each symbol moved by +1 and by +3
     * alone, each pair moved by +1 together, and finally all moved by +2 (a check of the fit).
     */
    public static List<long[]> samplePoints(long[] base) {
        int k = base.length;
        List<long[]> out = new ArrayList<>();
        out.add(base.clone());
        for (int i = 0; i < k; i++) {
            out.add(moved(base, 1, i));
            out.add(moved(base, 3, i));
        }
        for (int i = 0; i < k; i++) for (int j = i + 1; j < k; j++) out.add(moved(base, 1, i, j));
        long[] all = base.clone();
        for (int i = 0; i < k; i++) all[i] += 2;
        out.add(all);
        return out;
    }

    private static long[] moved(long[] base, long by, int... which) {
        long[] v = base.clone();
        for (int i : which) v[i] += by;
        return v;
    }

    /**
     * Fits a template to the texts produced at {@link #samplePoints}{@code (base)}, in that
     * order; null when they differ other than in integers, or an integer is not such a polynomial.
     */
    public static SizeTemplate fit(List<String> texts, long[] base) {
        List<long[]> samples = samplePoints(base);
        if (texts.size() != samples.size()) {
            throw new IllegalArgumentException("one text per sample point expected: " + samples.size() + ", got " + texts.size());
        }
        List<List<String>> split = new ArrayList<>();
        for (String t : texts) split.add(tokenize(t));
        int n = split.get(0).size();
        for (List<String> s : split) if (s.size() != n) return null;
        List<Token> tokens = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            String first = split.get(0).get(i);
            if (!isInteger(first)) {
                for (List<String> s : split) if (!s.get(i).equals(first)) return null;
                tokens.add(new Token(first, 0, null, null, null));
                continue;
            }
            long[] values = new long[texts.size()];
            for (int g = 0; g < values.length; g++) {
                if (!isInteger(split.get(g).get(i))) return null;
                values[g] = Long.parseLong(split.get(g).get(i));
            }
            Token t = fitPolynomial(values, samples, base);
            if (t == null) return null;
            tokens.add(t);
        }
        return new SizeTemplate(tokens, base.clone());
    }

    private static Token fitPolynomial(long[] values, List<long[]> samples, long[] base) {
        int k = base.length;
        long v0 = values[0];
        long[] linear = new long[k], square = new long[k];
        long[][] cross = new long[k][k];
        boolean constant = true;
        for (int i = 0; i < k; i++) {
            long d1 = values[1 + 2 * i] - v0, d3 = values[2 + 2 * i] - v0;
            // d1 = a + b, d3 = 3a + 9b
            if ((d3 - 3 * d1) % 6 != 0) return null;
            square[i] = (d3 - 3 * d1) / 6;
            linear[i] = d1 - square[i];
        }
        int at = 1 + 2 * k;
        for (int i = 0; i < k; i++) {
            for (int j = i + 1; j < k; j++) {
                cross[i][j] = values[at++] - v0 - linear[i] - square[i] - linear[j] - square[j];
            }
        }
        for (int i = 0; i < k; i++) {
            constant &= linear[i] == 0 && square[i] == 0;
            for (int j = i + 1; j < k; j++) constant &= cross[i][j] == 0;
        }
        Token t = new Token(null, v0, linear, square, cross);
        for (int g = 0; g < values.length; g++) {
            if (t.eval(offsets(samples.get(g), base)) != values[g]) return null;
        }
        return constant ? new Token(Long.toString(v0), 0, null, null, null) : t;
    }

    private static long[] offsets(long[] values, long[] base) {
        long[] d = new long[values.length];
        for (int i = 0; i < d.length; i++) d[i] = values[i] - base[i];
        return d;
    }

    /** The number of symbols. */
    public int symbols() { return base.length; }

    /** The text at these symbol values, or null when an integer of it would be negative. */
    public String render(long[] symbolValues) {
        if (symbolValues.length != base.length) {
            throw new IllegalArgumentException("expected " + base.length + " symbol values, got " + symbolValues.length);
        }
        long[] d = offsets(symbolValues, base);
        StringBuilder sb = new StringBuilder();
        for (Token t : tokens) {
            if (t.isLiteral()) sb.append(t.literal());
            else {
                long v = t.eval(d);
                if (v < 0) return null;
                sb.append(v);
            }
        }
        return sb.toString();
    }

    /**
     * The text with each integer that depends on the symbols written as a polynomial in
     * them ({@code 8*s0}, {@code s0*s1+2}), for people to read: {@code names.get(k)} names
     * symbol k.
     */
    public String renderSymbolic(List<String> names) {
        if (names.size() != base.length) throw new IllegalArgumentException("expected " + base.length + " names, got " + names.size());
        StringBuilder sb = new StringBuilder();
        for (Token t : tokens) sb.append(t.isLiteral() ? t.literal() : polynomial(t, names));
        return sb.toString();
    }

    /** The token's polynomial in the symbols themselves (it is fitted in their offsets from the base). */
    private String polynomial(Token t, List<String> names) {
        int k = base.length;
        long constant = t.v0();
        long[] linear = new long[k], square = t.square().clone();
        long[][] cross = new long[k][k];
        for (int i = 0; i < k; i++) {
            long b = base[i];
            // a (s - b) + q (s - b)^2 = q s^2 + (a - 2 q b) s + (q b^2 - a b)
            constant += t.square()[i] * b * b - t.linear()[i] * b;
            linear[i] += t.linear()[i] - 2 * t.square()[i] * b;
            for (int j = i + 1; j < k; j++) {
                long c = t.cross()[i][j];
                // c (s_i - b_i)(s_j - b_j) = c s_i s_j - c b_j s_i - c b_i s_j + c b_i b_j
                cross[i][j] = c;
                linear[i] -= c * base[j];
                linear[j] -= c * b;
                constant += c * b * base[j];
            }
        }
        List<String> terms = new ArrayList<>();
        for (int i = 0; i < k; i++) {
            if (square[i] != 0) terms.add(term(square[i], names.get(i) + "*" + names.get(i)));
            for (int j = i + 1; j < k; j++) if (cross[i][j] != 0) terms.add(term(cross[i][j], names.get(i) + "*" + names.get(j)));
        }
        for (int i = 0; i < k; i++) if (linear[i] != 0) terms.add(term(linear[i], names.get(i)));
        if (constant != 0 || terms.isEmpty()) terms.add(Long.toString(constant));
        StringBuilder sb = new StringBuilder(terms.getFirst());
        for (String term : terms.subList(1, terms.size())) sb.append(term.startsWith("-") ? term : "+" + term);
        return sb.toString();
    }

    private static String term(long coefficient, String monomial) {
        return coefficient == 1 ? monomial : coefficient == -1 ? "-" + monomial : coefficient + "*" + monomial;
    }

    /** How many integers of the text depend on the symbols. */
    public int symbolicIntegers() {
        int n = 0;
        for (Token t : tokens) if (!t.isLiteral()) n++;
        return n;
    }

    /**
     * Integers of the text: not part of a name ("float32"), a value reference's output
     * index ("%6.2") or a double ("1.0E-5").
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
        int i = s.startsWith("-") ? 1 : 0;
        // Longer digit strings are not sizes (and would not fit a long): literal text.
        if (i == s.length() || s.length() - i > 18) return false;
        for (; i < s.length(); i++) if (!Character.isDigit(s.charAt(i))) return false;
        return true;
    }
}
