package dev.kiln.ir;

import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Text forms of graphs. The canonical form is versioned: a line {@code kiln-graph 2},
 * then one line per node and one {@code return} line. It reads back to an equal graph.
 */
public final class GraphFormat {
    /** Bumped whenever the canonical encoding changes, so old hashes never collide with new meanings. */
    public static final int VERSION = 2;
    private static final String HEADER = "kiln-graph " + VERSION;

    private GraphFormat() {}

    static String write(Graph g) {
        StringBuilder sb = new StringBuilder(HEADER).append('\n');
        for (Node n : g.nodes()) {
            switch (n) {
                case Node.Input in -> sb.append('%').append(in.id()).append(" = input ").append(in.index())
                        .append(" : ").append(metas(in.outputs())).append('\n');
                case Node.Apply ap -> sb.append('%').append(ap.id()).append(" = ").append(OpCodec.encode(ap.op()))
                        .append(' ').append(refs(ap.inputs())).append(" : ").append(metas(ap.outputs())).append('\n');
            }
        }
        return sb.append("return ").append(refs(g.outputs())).append('\n').toString();
    }

    /**
     * Parses the canonical form and re-infers every node's outputs with the op registry;
     * null when the text does not parse or a recorded shape disagrees with inference (a
     * size template rendered at sizes its ops reject).
     */
    public static Graph readInferred(String text) {
        Graph g;
        try {
            g = read(text);
        } catch (RuntimeException e) {
            return null;
        }
        GraphBuilder b = new GraphBuilder();
        for (Node n : g.nodes()) {
            switch (n) {
                case Node.Input in -> b.input(in.meta());
                case Node.Apply ap -> {
                    List<ValueRef> out;
                    try {
                        out = b.apply(ap.op(), ap.inputs());
                    } catch (RuntimeException e) {
                        return null;
                    }
                    for (int i = 0; i < out.size(); i++) if (!b.meta(out.get(i)).equals(ap.outputs().get(i))) return null;
                }
            }
        }
        return b.build(g.outputs());
    }

    /** Parses the canonical form; rejects other versions. */
    public static Graph read(String text) {
        String[] lines = text.split("\n");
        if (lines.length == 0 || !lines[0].equals(HEADER)) {
            throw new IllegalArgumentException("not a " + HEADER + " graph (first line: "
                    + (lines.length == 0 ? "none" : lines[0]) + ")");
        }
        GraphBuilder b = new GraphBuilder();
        for (int i = 1; i < lines.length; i++) {
            String line = lines[i];
            if (line.startsWith("return ")) return b.build(parseRefs(line.substring(7)));
            int eq = line.indexOf(" = ");
            int colon = line.lastIndexOf(" : ");
            String body = line.substring(eq + 3, colon);
            List<TensorMeta> outs = parseMetas(line.substring(colon + 3));
            if (body.startsWith("input ")) {
                b.input(outs.get(0));
            } else {
                int argsStart = body.lastIndexOf(" (");
                b.apply(OpCodec.decode(body.substring(0, argsStart)), parseRefs(body.substring(argsStart + 1)), outs);
            }
        }
        throw new IllegalArgumentException("graph text has no return line");
    }

    private static String refs(List<ValueRef> refs) {
        return refs.stream().map(ValueRef::toString).collect(Collectors.joining(", ", "(", ")"));
    }

    private static List<ValueRef> parseRefs(String s) {
        List<ValueRef> out = new ArrayList<>();
        for (String p : OpCodec.splitTopLevel(s.trim().substring(1, s.trim().length() - 1))) {
            String v = p.substring(1);
            int dot = v.indexOf('.');
            out.add(dot < 0 ? new ValueRef(Integer.parseInt(v), 0)
                    : new ValueRef(Integer.parseInt(v.substring(0, dot)), Integer.parseInt(v.substring(dot + 1))));
        }
        return out;
    }

    private static String metas(List<TensorMeta> metas) {
        return metas.stream().map(TensorMeta::toString).collect(Collectors.joining(", "));
    }

    private static List<TensorMeta> parseMetas(String s) {
        List<TensorMeta> out = new ArrayList<>();
        for (String p : OpCodec.splitTopLevel(s)) {
            int br = p.indexOf('[');
            String dims = p.substring(br + 1, p.length() - 1);
            int[] d = dims.isEmpty() ? new int[0]
                    : java.util.Arrays.stream(dims.split(",")).mapToInt(x -> Integer.parseInt(x.trim())).toArray();
            out.add(new TensorMeta(DType.of(p.substring(0, br)), Shape.of(d)));
        }
        return out;
    }

    static String table(Graph g) {
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"value", "op", "args", "type"});
        for (Node n : g.nodes()) {
            switch (n) {
                case Node.Input in -> rows.add(new String[] {"%" + in.id(), "input " + in.index(), "", metas(in.outputs())});
                case Node.Apply ap -> rows.add(new String[] {"%" + ap.id(), describe(ap),
                        ap.inputs().stream().map(ValueRef::toString).collect(Collectors.joining(", ")), metas(ap.outputs())});
            }
        }
        rows.add(new String[] {"return", "", g.outputs().stream().map(ValueRef::toString).collect(Collectors.joining(", ")), ""});
        int[] w = new int[4];
        for (String[] r : rows) for (int i = 0; i < 4; i++) w[i] = Math.max(w[i], r[i].length());
        StringBuilder sb = new StringBuilder();
        for (String[] r : rows) {
            for (int i = 0; i < 4; i++) {
                sb.append(r[i]);
                if (i < 3) sb.append(" ".repeat(w[i] - r[i].length() + 2));
            }
            sb.setLength(sb.length() - (sb.charAt(sb.length() - 1) == ' ' ? trailing(sb) : 0));
            sb.append('\n');
        }
        return sb.toString();
    }

    private static int trailing(StringBuilder sb) {
        int n = 0;
        while (n < sb.length() && sb.charAt(sb.length() - 1 - n) == ' ') n++;
        return n;
    }

    /** The op's name with its attributes, e.g. {@code sum(dims=[1], keepdim=true)}. */
    static String describe(Node.Apply ap) {
        String enc = OpCodec.encode(ap.op());
        String attrs = enc.substring(enc.indexOf('(') + 1, enc.length() - 1);
        attrs = attrs.replaceAll("\\bfn=\\w+(, )?", "");
        return attrs.isEmpty() ? ap.op().name() : ap.op().name() + "(" + attrs + ")";
    }

    static String dot(Graph g) {
        StringBuilder sb = new StringBuilder("digraph kiln {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
        for (Node n : g.nodes()) {
            String label = switch (n) {
                case Node.Input in -> "input " + in.index() + "\\n" + metas(in.outputs());
                case Node.Apply ap -> describe(ap).replace("\"", "\\\"") + "\\n" + metas(ap.outputs());
            };
            sb.append("  n").append(n.id()).append(" [label=\"%").append(n.id()).append(' ').append(label).append('"')
                    .append(n instanceof Node.Input ? ", shape=ellipse" : "").append("];\n");
            if (n instanceof Node.Apply ap) {
                for (ValueRef in : ap.inputs()) sb.append("  n").append(in.node()).append(" -> n").append(n.id()).append(";\n");
            }
        }
        for (int i = 0; i < g.outputs().size(); i++) {
            sb.append("  out").append(i).append(" [label=\"output ").append(i).append("\", shape=ellipse];\n");
            sb.append("  n").append(g.outputs().get(i).node()).append(" -> out").append(i).append(";\n");
        }
        return sb.append("}\n").toString();
    }
}
