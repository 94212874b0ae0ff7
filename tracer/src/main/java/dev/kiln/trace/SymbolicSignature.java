package dev.kiln.trace;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The guard of a graph with symbolic dimensions: static dimensions must match exactly;
 * a symbolic dimension takes any size of 2 or more (0 and 1 are specialised, as in
 * torch.compile, since size 1 changes broadcasting), and dimensions sharing a symbol
 * must agree. Matching yields the symbol values the graph is instantiated with.
 */
final class SymbolicSignature {
    /** Per argument: a TensorGuard, or the scalar value. */
    private final Object[] expected;
    private final int symbols;
    private final List<String> symbolUses;

    private record TensorGuard(DType dtype, int[] dims, int[] symbol, boolean contiguous) {}

    private SymbolicSignature(Object[] expected, int symbols, List<String> symbolUses) {
        this.expected = expected;
        this.symbols = symbols;
        this.symbolUses = symbolUses;
    }

    /**
     * A signature over {@code args} where {@code symbolic[i][d]} marks dimension d of tensor
     * argument i symbolic. Equal sizes share a symbol (duck sizing); symbols are numbered
     * in order of first appearance.
     */
    static SymbolicSignature of(Object[] args, boolean[][] symbolic, List<String> argNames) {
        Object[] e = new Object[args.length];
        List<Integer> symbolSizes = new ArrayList<>();
        List<String> uses = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (!(args[i] instanceof Tensor t)) {
                e[i] = Signature.scalarKey(args[i]);
                continue;
            }
            int[] dims = t.shape().dims();
            int[] sym = new int[dims.length];
            for (int d = 0; d < dims.length; d++) {
                sym[d] = -1;
                if (symbolic[i] != null && symbolic[i][d]) {
                    int k = symbolSizes.indexOf(dims[d]);
                    if (k < 0) {
                        k = symbolSizes.size();
                        symbolSizes.add(dims[d]);
                        uses.add("");
                    }
                    sym[d] = k;
                    String name = i < argNames.size() ? argNames.get(i) : "argument " + i;
                    uses.set(k, (uses.get(k).isEmpty() ? "" : uses.get(k) + ", ") + name + "[" + d + "]");
                }
            }
            e[i] = new TensorGuard(t.dtype(), dims, sym, t.isContiguous());
        }
        return new SymbolicSignature(e, symbolSizes.size(), uses);
    }

    int symbols() { return symbols; }

    /** The current value of each symbol in {@code args}, or null when they do not match. */
    long[] match(Object[] args) {
        if (args.length != expected.length) return null;
        long[] values = new long[symbols];
        for (int i = 0; i < args.length; i++) {
            Object e = expected[i];
            if (e instanceof TensorGuard g) {
                if (!(args[i] instanceof Tensor t) || t.dtype() != g.dtype || t.rank() != g.dims.length
                        || t.isContiguous() != g.contiguous) {
                    return null;
                }
                for (int d = 0; d < g.dims.length; d++) {
                    int size = t.shape().dimAt(d);
                    int k = g.symbol[d];
                    if (k < 0) {
                        if (size != g.dims[d]) return null;
                    } else if (size < 2 || (values[k] != 0 && values[k] != size)) {
                        return null;
                    } else {
                        values[k] = size;
                    }
                }
            } else if (args[i] instanceof Tensor || !Objects.equals(e, Signature.scalarKey(args[i]))) {
                return null;
            }
        }
        return values;
    }

    /** The symbol values of the arguments the signature was built from. */
    long[] baseValues() {
        long[] v = new long[symbols];
        for (Object e : expected) {
            if (e instanceof TensorGuard g) {
                for (int d = 0; d < g.dims.length; d++) if (g.symbol[d] >= 0) v[g.symbol[d]] = g.dims[d];
            }
        }
        return v;
    }

    /** Shapes of the tensor arguments with the symbols set to {@code values}. */
    Shape[] shapesAt(long[] values) {
        List<Shape> out = new ArrayList<>();
        for (Object e : expected) {
            if (e instanceof TensorGuard g) {
                int[] d = g.dims.clone();
                for (int i = 0; i < d.length; i++) if (g.symbol[i] >= 0) d[i] = Math.toIntExact(values[g.symbol[i]]);
                out.add(Shape.of(d));
            }
        }
        return out.toArray(Shape[]::new);
    }

    /** Where each symbol appears, e.g. {@code s0 = a[0], b[1]}. */
    String describeSymbols() {
        StringBuilder sb = new StringBuilder();
        for (int k = 0; k < symbols; k++) {
            if (k > 0) sb.append("; ");
            sb.append('s').append(k).append(" = ").append(symbolUses.get(k));
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < expected.length; i++) {
            if (i > 0) sb.append(", ");
            if (expected[i] instanceof TensorGuard g) {
                sb.append(g.dtype).append('[');
                for (int d = 0; d < g.dims.length; d++) {
                    if (d > 0) sb.append(',');
                    sb.append(g.symbol[d] >= 0 ? "s" + g.symbol[d] : Integer.toString(g.dims[d]));
                }
                sb.append(']');
            } else {
                sb.append(expected[i]);
            }
        }
        return sb.append(']').toString();
    }
}
