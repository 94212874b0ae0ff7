package dev.kiln.ir;

import dev.kiln.ops.TensorMeta;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * An immutable SSA graph: nodes in topological order (node ids are their positions),
 * the graph inputs among them, and the values it returns. Passes build new graphs
 * with {@link GraphBuilder} rather than changing one.
 */
public final class Graph {
    private final List<Node> nodes;
    private final List<ValueRef> outputs;
    private final int inputCount;
    private String canonical;

    Graph(List<Node> nodes, List<ValueRef> outputs) {
        this.nodes = List.copyOf(nodes);
        this.outputs = List.copyOf(outputs);
        this.inputCount = (int) nodes.stream().filter(n -> n instanceof Node.Input).count();
    }

    public List<Node> nodes() { return nodes; }
    public List<ValueRef> outputs() { return outputs; }
    public int inputCount() { return inputCount; }
    public Node node(int id) { return nodes.get(id); }

    public TensorMeta meta(ValueRef v) { return nodes.get(v.node()).outputs().get(v.output()); }

    /** The input metas in input order. */
    public List<TensorMeta> inputMetas() {
        List<TensorMeta> out = new ArrayList<>();
        for (Node n : nodes) if (n instanceof Node.Input in) out.add(in.meta());
        return out;
    }

    /** Ops applied (input nodes excluded). */
    public long opCount() { return nodes.stream().filter(n -> n instanceof Node.Apply).count(); }

    /** The canonical, versioned serialization: equal graphs give equal text. */
    public String canonicalText() {
        String c = canonical;
        if (c == null) canonical = c = GraphFormat.write(this);
        return c;
    }

    /** SHA-256 of the canonical serialization, in hex: stable across JVMs. */
    public String hash() {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(canonicalText().getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every Java platform", e);
        }
    }

    /** One line per node with op, arguments and output types, like torch.fx's print_tabular. */
    public String toTable() { return GraphFormat.table(this); }

    /** Graphviz DOT. */
    public String toDot() { return GraphFormat.dot(this); }

    @Override
    public boolean equals(Object o) {
        return o instanceof Graph g && nodes.equals(g.nodes) && outputs.equals(g.outputs);
    }

    @Override
    public int hashCode() { return nodes.hashCode() * 31 + outputs.hashCode(); }

    @Override
    public String toString() { return toTable(); }
}
