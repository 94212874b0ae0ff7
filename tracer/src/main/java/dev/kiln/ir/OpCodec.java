package dev.kiln.ir;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Text encoding of op values: {@code Name(attr=value, ...)}, the record's simple name and its
 * components in declaration order. Public so that backends can serialise the ops of their
 * compiled programs in the same form; the format version in {@link GraphFormat} changes when
 * an encoding would.
 *
 * <p>Written out per op rather than derived by reflection: every warm start encodes its
 * graph for the cache key and decodes its program's ops, and in a fresh JVM each reflective
 * accessor or constructor costs milliseconds to set up (a fifth of Kiln's own warm-start
 * work). The switch over the sealed {@link Op} makes a new op a compile error here until it
 * has an encoding; {@code OpCodecProperties} checks every op against its record components.
 */
public final class OpCodec {

    private OpCodec() {}

    public static String encode(Op op) {
        Writer w = new Writer(op.getClass().getSimpleName());
        switch (op) {
            case Op.Unary o -> w.put("fn", o.fn());
            case Op.Binary o -> w.put("fn", o.fn());
            case Op.BinaryScalar o -> w.put("fn", o.fn()).put("scalar", o.scalar()).put("integralScalar", o.integralScalar())
                    .put("scalarFirst", o.scalarFirst());
            case Op.Clamp o -> w.put("min", o.min()).put("max", o.max());
            case Op.Where o -> { }
            case Op.Cast o -> w.put("to", o.to());
            case Op.Contiguous o -> { }
            case Op.Full o -> w.put("shape", o.shape()).put("dtype", o.dtype()).put("value", o.value());
            case Op.Arange o -> w.put("start", o.start()).put("step", o.step()).put("length", o.length()).put("dtype", o.dtype())
                    .put("exactStart", o.exactStart()).put("exactStep", o.exactStep());
            case Op.Reduce o -> w.put("fn", o.fn()).put("dims", o.dims()).put("keepdim", o.keepdim());
            case Op.ArgReduce o -> w.put("max", o.max()).put("dim", o.dim()).put("keepdim", o.keepdim()).put("lastIndex", o.lastIndex());
            case Op.CumSum o -> w.put("dim", o.dim()).put("exclusive", o.exclusive()).put("reverse", o.reverse());
            case Op.Softmax o -> w.put("dim", o.dim()).put("log", o.log());
            case Op.LayerNorm o -> w.put("axis", o.axis()).put("eps", o.eps()).put("hasWeight", o.hasWeight()).put("hasBias", o.hasBias());
            case Op.RmsNorm o -> w.put("axis", o.axis()).put("eps", o.eps()).put("hasWeight", o.hasWeight());
            case Op.MatMul o -> { }
            case Op.Rope o -> w.put("interleaved", o.interleaved());
            case Op.ScaledDotProductAttention o -> w.put("causal", o.causal()).put("scale", o.scale()).put("enableGqa", o.enableGqa())
                    .put("hasMask", o.hasMask());
            case Op.Attention o -> w.put("causal", o.causal()).put("causalOffset", o.causalOffset()).put("scale", o.scale())
                    .put("softcap", o.softcap()).put("enableGqa", o.enableGqa()).put("hasMask", o.hasMask())
                    .put("partitionSize", o.partitionSize()).put("transposedOutput", o.transposedOutput());
            case Op.PagedAttention o -> w.put("scale", o.scale()).put("causal", o.causal()).put("slidingWindow", o.slidingWindow())
                    .put("softcap", o.softcap());
            case Op.SlidingWindowDecode o -> w.put("scale", o.scale()).put("softcap", o.softcap());
            case Op.ReshapeAndCache o -> { }
            case Op.SlidingWindowAttention o -> w.put("window", o.window()).put("scale", o.scale()).put("softcap", o.softcap());
            case Op.Gather o -> w.put("axis", o.axis());
            case Op.GatherElements o -> w.put("axis", o.axis());
            case Op.Concat o -> w.put("dim", o.dim());
            case Op.Triangle o -> w.put("upper", o.upper()).put("diagonal", o.diagonal());
            case Op.TopK o -> w.put("k", o.k()).put("dim", o.dim()).put("largest", o.largest()).put("sorted", o.sorted());
            case Op.Reshape o -> w.put("shape", o.shape());
            case Op.Permute o -> w.put("dims", o.dims());
            case Op.Slice o -> w.put("dim", o.dim()).put("start", o.start()).put("step", o.step()).put("length", o.length());
            case Op.Expand o -> w.put("shape", o.shape());
            case Op.Diagonal o -> w.put("dim1", o.dim1()).put("dim2", o.dim2());
        }
        return w.text();
    }

    public static Op decode(String text) {
        int open = text.indexOf('(');
        if (open < 0 || !text.endsWith(")")) throw new IllegalArgumentException("not an op: " + text);
        String name = text.substring(0, open);
        Reader r = new Reader(name, text.substring(open + 1, text.length() - 1));
        Op op = switch (name) {
            case "Unary" -> new Op.Unary(r.unaryFn("fn"));
            case "Binary" -> new Op.Binary(r.binaryFn("fn"));
            case "BinaryScalar" -> new Op.BinaryScalar(r.binaryFn("fn"), r.real("scalar"), r.bool("integralScalar"), r.bool("scalarFirst"));
            case "Clamp" -> new Op.Clamp(r.real("min"), r.real("max"));
            case "Where" -> new Op.Where();
            case "Cast" -> new Op.Cast(r.dtype("to"));
            case "Contiguous" -> new Op.Contiguous();
            case "Full" -> new Op.Full(r.shape("shape"), r.dtype("dtype"), r.real("value"));
            case "Arange" -> new Op.Arange(r.real("start"), r.real("step"), r.integer("length"), r.dtype("dtype"), r.wide("exactStart"),
                    r.wide("exactStep"));
            case "Reduce" -> new Op.Reduce(r.reduceFn("fn"), r.ints("dims"), r.bool("keepdim"));
            case "ArgReduce" -> new Op.ArgReduce(r.bool("max"), r.integer("dim"), r.bool("keepdim"), r.bool("lastIndex"));
            case "CumSum" -> new Op.CumSum(r.integer("dim"), r.bool("exclusive"), r.bool("reverse"));
            case "Softmax" -> new Op.Softmax(r.integer("dim"), r.bool("log"));
            case "LayerNorm" -> new Op.LayerNorm(r.integer("axis"), r.real("eps"), r.bool("hasWeight"), r.bool("hasBias"));
            case "RmsNorm" -> new Op.RmsNorm(r.integer("axis"), r.real("eps"), r.bool("hasWeight"));
            case "MatMul" -> new Op.MatMul();
            case "Rope" -> new Op.Rope(r.bool("interleaved"));
            case "ScaledDotProductAttention" -> new Op.ScaledDotProductAttention(r.bool("causal"), r.real("scale"), r.bool("enableGqa"),
                    r.bool("hasMask"));
            case "Attention" -> new Op.Attention(r.bool("causal"), r.wide("causalOffset"), r.real("scale"), r.real("softcap"),
                    r.bool("enableGqa"), r.bool("hasMask"), r.integer("partitionSize"), r.bool("transposedOutput"));
            case "PagedAttention" -> new Op.PagedAttention(r.real("scale"), r.bool("causal"), r.integer("slidingWindow"), r.real("softcap"));
            case "SlidingWindowDecode" -> new Op.SlidingWindowDecode(r.real("scale"), r.real("softcap"));
            case "ReshapeAndCache" -> new Op.ReshapeAndCache();
            case "SlidingWindowAttention" -> new Op.SlidingWindowAttention(r.integer("window"), r.real("scale"), r.real("softcap"));
            case "Gather" -> new Op.Gather(r.integer("axis"));
            case "GatherElements" -> new Op.GatherElements(r.integer("axis"));
            case "Concat" -> new Op.Concat(r.integer("dim"));
            case "Triangle" -> new Op.Triangle(r.bool("upper"), r.wide("diagonal"));
            case "TopK" -> new Op.TopK(r.integer("k"), r.integer("dim"), r.bool("largest"), r.bool("sorted"));
            case "Reshape" -> new Op.Reshape(r.shape("shape"));
            case "Permute" -> new Op.Permute(r.ints("dims"));
            case "Slice" -> new Op.Slice(r.integer("dim"), r.wide("start"), r.wide("step"), r.integer("length"));
            case "Expand" -> new Op.Expand(r.shape("shape"));
            case "Diagonal" -> new Op.Diagonal(r.integer("dim1"), r.integer("dim2"));
            default -> throw new IllegalArgumentException("unknown op " + name);
        };
        r.requireAllRead();
        return op;
    }

    /** Builds {@code Name(a=1, b=[2,3])}. */
    private static final class Writer {
        private final StringBuilder sb;
        private boolean first = true;

        Writer(String name) { sb = new StringBuilder(name).append('('); }

        private StringBuilder key(String name) {
            if (!first) sb.append(", ");
            first = false;
            return sb.append(name).append('=');
        }

        Writer put(String name, boolean v) { key(name).append(v); return this; }

        Writer put(String name, int v) { key(name).append(v); return this; }

        Writer put(String name, long v) { key(name).append(v); return this; }

        Writer put(String name, double v) { key(name).append(Double.toString(v)); return this; }

        Writer put(String name, Enum<?> v) { key(name).append(v.name()); return this; }

        Writer put(String name, DType v) { key(name).append(v); return this; }

        Writer put(String name, Shape v) { key(name).append(v); return this; }

        Writer put(String name, List<Integer> v) {
            StringBuilder b = key(name).append('[');
            for (int i = 0; i < v.size(); i++) b.append(i > 0 ? "," : "").append(v.get(i));
            b.append(']');
            return this;
        }

        String text() { return sb.append(')').toString(); }
    }

    /** Reads the attributes of one op's text by name; every attribute must be read exactly once. */
    private static final class Reader {
        private final String op;
        private final Map<String, String> attrs = new HashMap<>();

        Reader(String op, String body) {
            this.op = op;
            for (String part : splitTopLevel(body)) {
                int eq = part.indexOf('=');
                if (eq < 0) throw new IllegalArgumentException(op + ": not an attribute: " + part);
                if (attrs.put(part.substring(0, eq).trim(), part.substring(eq + 1).trim()) != null) {
                    throw new IllegalArgumentException(op + ": attribute " + part.substring(0, eq).trim() + " given twice");
                }
            }
        }

        private String raw(String name) {
            String raw = attrs.remove(name);
            if (raw == null) throw new IllegalArgumentException(op + ": missing attribute " + name);
            return raw;
        }

        void requireAllRead() {
            if (!attrs.isEmpty()) throw new IllegalArgumentException(op + ": unknown attributes " + attrs.keySet());
        }

        boolean bool(String name) {
            String raw = raw(name);
            if (!raw.equals("true") && !raw.equals("false")) throw new IllegalArgumentException(op + ": " + name + " is not a boolean: " + raw);
            return raw.equals("true");
        }

        int integer(String name) { return Integer.parseInt(raw(name)); }

        long wide(String name) { return Long.parseLong(raw(name)); }

        double real(String name) { return Double.parseDouble(raw(name)); }

        DType dtype(String name) { return DType.of(raw(name)); }

        UnaryFn unaryFn(String name) { return UnaryFn.valueOf(raw(name)); }

        BinaryFn binaryFn(String name) { return BinaryFn.valueOf(raw(name)); }

        ReduceFn reduceFn(String name) { return ReduceFn.valueOf(raw(name)); }

        Shape shape(String name) { return Shape.of(parseInts(raw(name))); }

        List<Integer> ints(String name) {
            List<Integer> out = new ArrayList<>();
            for (int i : parseInts(raw(name))) out.add(i);
            return out;
        }
    }

    private static int[] parseInts(String raw) {
        if (!raw.startsWith("[") || !raw.endsWith("]")) throw new IllegalArgumentException("not a list of integers: " + raw);
        String body = raw.substring(1, raw.length() - 1).trim();
        if (body.isEmpty()) return new int[0];
        String[] p = body.split(",");
        int[] out = new int[p.length];
        for (int i = 0; i < p.length; i++) out[i] = Integer.parseInt(p[i].trim());
        return out;
    }

    /** Splits on commas that are not inside brackets or parentheses. */
    static List<String> splitTopLevel(String s) {
        List<String> out = new ArrayList<>();
        int depth = 0, start = 0;
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (ch == '[' || ch == '(') depth++;
            else if (ch == ']' || ch == ')') depth--;
            else if (ch == ',' && depth == 0) {
                out.add(s.substring(start, i).trim());
                start = i + 1;
            }
        }
        if (!s.substring(start).isBlank()) out.add(s.substring(start).trim());
        return out;
    }
}
