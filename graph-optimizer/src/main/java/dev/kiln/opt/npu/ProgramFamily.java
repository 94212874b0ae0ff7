package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphFormat;
import dev.kiln.ir.SizeTemplate;
import dev.kiln.ops.TensorMeta;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;

/**
 * One kernel program for every size of a symbolic signature: the programs lowered at the
 * sample sizes of {@link SizeTemplate#samplePoints} agree in everything but sizes, whose
 * integers (launch shapes, reshape targets, slice bounds, ...) are polynomials in the
 * symbols. A run binds the symbols from its inputs' dimensions ({@link #bind}) and gets the
 * program at those sizes ({@link #at}) with no pass, lowering or code generation: the
 * run-time dimension arguments of the command processor.
 */
public final class ProgramFamily {
    /** Symbol {@code symbol} is dimension {@code dim} of input {@code input}. */
    public record Binding(int symbol, int input, int dim) {}

    private final SizeTemplate template;
    private final List<Binding> bindings;
    private final List<KernelProgram> samples;
    private final List<TensorMeta> baseInputs;

    private ProgramFamily(SizeTemplate template, List<Binding> bindings, List<KernelProgram> samples, List<TensorMeta> baseInputs) {
        this.template = template;
        this.bindings = List.copyOf(bindings);
        this.samples = List.copyOf(samples);
        this.baseInputs = List.copyOf(baseInputs);
    }

    /**
     * The family of {@code programs}, lowered from graphs whose inputs were {@code inputs} at
     * the sample points of {@code base} (in that order); empty when the programs differ other
     * than in sizes, a size is not a polynomial in the symbols, or some symbol is not an
     * input's dimension.
     */
    public static Optional<ProgramFamily> fit(List<KernelProgram> programs, List<List<TensorMeta>> inputs, long[] base) {
        List<long[]> points = SizeTemplate.samplePoints(base);
        if (programs.size() != points.size() || inputs.size() != points.size()) {
            throw new IllegalArgumentException("one program and one input list per sample point expected: " + points.size());
        }
        SizeTemplate template = SizeTemplate.fit(programs.stream().map(KernelProgram::toText).toList(), base);
        if (template == null) return Optional.empty();
        List<Binding> bindings = new ArrayList<>();
        for (int k = 0; k < base.length; k++) {
            Binding b = findBinding(k, inputs, points);
            if (b == null) return Optional.empty();
            bindings.add(b);
        }
        return Optional.of(new ProgramFamily(template, bindings, programs, inputs.getFirst()));
    }

    /**
     * The family of the programs {@code lower} makes of {@code graphs} (traced at the sample
     * points of {@code base}), checked at distant sizes: the samples lie within a few of
     * {@code base}, where a size the lowering derives by rounding (a tile count, a split)
     * can look constant or polynomial. At each distant point where the sample graphs' own
     * template gives a graph its ops accept, the program lowered from that graph must equal
     * the family's program there; at least one such point must exist. Empty otherwise.
     */
    public static Optional<ProgramFamily> fitChecked(List<Graph> graphs, long[] base, Function<Graph, KernelProgram> lower) {
        List<KernelProgram> programs = graphs.stream().map(lower).toList();
        Optional<ProgramFamily> family = fit(programs, graphs.stream().map(Graph::inputMetas).toList(), base);
        SizeTemplate graphTemplate = SizeTemplate.fit(graphs.stream().map(Graph::canonicalText).toList(), base);
        if (family.isEmpty() || graphTemplate == null) return Optional.empty();
        int checked = 0;
        for (long[] far : distantPoints(base)) {
            String text = graphTemplate.render(far);
            Graph g = text == null ? null : GraphFormat.readInferred(text);
            if (g == null) continue;
            String expected = lower.apply(g).toText();
            try {
                if (!family.get().at(far).toText().equals(expected)) return Optional.empty();
            } catch (IllegalArgumentException e) {
                return Optional.empty();
            }
            checked++;
        }
        return checked == 0 ? Optional.empty() : family;
    }

    /** Every symbol doubled plus 5, and every symbol plus 37: far from the samples, odd, on neither side of a power of two. */
    static List<long[]> distantPoints(long[] base) {
        long[] doubled = new long[base.length], shifted = new long[base.length];
        for (int i = 0; i < base.length; i++) {
            doubled[i] = 2 * base[i] + 5;
            shifted[i] = base[i] + 37;
        }
        return List.of(doubled, shifted);
    }

    /** An input dimension equal to symbol {@code k} at every sample. */
    private static Binding findBinding(int k, List<List<TensorMeta>> inputs, List<long[]> points) {
        List<TensorMeta> first = inputs.getFirst();
        for (int i = 0; i < first.size(); i++) {
            dims:
            for (int d = 0; d < first.get(i).shape().rank(); d++) {
                for (int s = 0; s < points.size(); s++) {
                    TensorMeta m = inputs.get(s).get(i);
                    if (m.shape().rank() != first.get(i).shape().rank() || m.shape().dim(d) != points.get(s)[k]) continue dims;
                }
                return new Binding(k, i, d);
            }
        }
        return null;
    }

    /** The program at the sample sizes the family was fitted at first. */
    public KernelProgram base() { return samples.getFirst(); }

    /** The programs it was fitted to, at the sample points in order (what the kernel cache keeps). */
    public List<KernelProgram> samples() { return samples; }

    public List<Binding> bindings() { return bindings; }

    /** The symbol values of a run with these inputs. */
    public long[] bind(List<TensorMeta> inputs) {
        if (inputs.size() != baseInputs.size()) {
            throw new IllegalArgumentException("the program takes " + baseInputs.size() + " inputs, got " + inputs.size());
        }
        long[] values = new long[bindings.size()];
        for (Binding b : bindings) {
            TensorMeta m = inputs.get(b.input());
            if (m.shape().rank() != baseInputs.get(b.input()).shape().rank()) {
                throw new IllegalArgumentException("input " + b.input() + " has rank " + m.shape().rank() + ", the program takes rank "
                        + baseInputs.get(b.input()).shape().rank());
            }
            values[b.symbol()] = m.shape().dim(b.dim());
        }
        return values;
    }

    /**
     * The program at these symbol values. Throws IllegalArgumentException when a size would
     * be negative or the program does not hold together (the caller checks its shapes by
     * planning its memory).
     */
    public KernelProgram at(long[] symbols) {
        String text = template.render(symbols);
        if (text == null) throw new IllegalArgumentException("the program has a negative size at " + java.util.Arrays.toString(symbols));
        return KernelProgram.parse(text);
    }

    /** "s0 = input 0 dim 1, ..." */
    public String describeBindings() {
        StringBuilder sb = new StringBuilder();
        for (Binding b : bindings) {
            if (!sb.isEmpty()) sb.append(", ");
            sb.append('s').append(b.symbol()).append(" = input ").append(b.input()).append(" dim ").append(b.dim());
        }
        return sb.toString();
    }

    /**
     * The launches whose sizes are computed at run time, in the program's text form with
     * those sizes written as polynomials in the symbols ({@code s0}, {@code s1}, ...).
     */
    public List<String> symbolicLaunches() {
        List<String> names = new ArrayList<>();
        for (int k = 0; k < bindings.size(); k++) names.add("s" + k);
        List<String> out = new ArrayList<>();
        for (String line : template.renderSymbolic(names).split("\n")) {
            boolean launch = !line.startsWith(" ") && !line.startsWith("slots") && !line.startsWith("inputs") && !line.startsWith("outputs");
            if (launch && line.matches(".*\\bs\\d+\\b.*")) out.add(line);
        }
        return out;
    }

    /** How many integers of the program are computed from the symbols at run time. */
    public int symbolicSizes() { return template.symbolicIntegers(); }
}
