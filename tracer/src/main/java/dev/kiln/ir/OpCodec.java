package dev.kiln.ir;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;

import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Text encoding of op values, derived from the registry's records: {@code Name(attr=value, ...)}.
 * New ops and attributes need no codec changes; the format version in {@link GraphFormat}
 * changes when an encoding would. Public so that backends can serialise the ops of their
 * compiled programs in the same form.
 */
public final class OpCodec {
    private static final Map<String, Class<?>> OPS = new HashMap<>();

    /**
     * An op record's components, accessors and canonical constructor, looked up once per
     * class: a program or graph has many nodes of few op types, and each reflective lookup
     * costs a fresh JVM (the cache key and the load of every warm start) far more than a call.
     */
    private record OpForm(RecordComponent[] components, Method[] accessors, Constructor<?> constructor) {
        static OpForm of(Class<?> c) {
            RecordComponent[] rc = c.getRecordComponents();
            Method[] accessors = new Method[rc.length];
            Class<?>[] types = new Class<?>[rc.length];
            for (int i = 0; i < rc.length; i++) {
                accessors[i] = rc[i].getAccessor();
                types[i] = rc[i].getType();
            }
            try {
                return new OpForm(rc, accessors, c.getDeclaredConstructor(types));
            } catch (NoSuchMethodException e) {
                throw new IllegalStateException("record " + c.getName() + " has no canonical constructor", e);
            }
        }
    }

    private static final ClassValue<OpForm> FORMS = new ClassValue<>() {
        @Override
        protected OpForm computeValue(Class<?> c) { return OpForm.of(c); }
    };

    static {
        collect(Op.class);
    }

    private OpCodec() {}

    private static void collect(Class<?> sealed) {
        for (Class<?> c : sealed.getPermittedSubclasses()) {
            if (c.isRecord()) OPS.put(c.getSimpleName(), c);
            else collect(c);
        }
    }

    public static String encode(Op op) {
        StringBuilder sb = new StringBuilder(op.getClass().getSimpleName()).append('(');
        OpForm form = FORMS.get(op.getClass());
        RecordComponent[] rc = form.components();
        for (int i = 0; i < rc.length; i++) {
            if (i > 0) sb.append(", ");
            sb.append(rc[i].getName()).append('=').append(encodeValue(read(form.accessors()[i], op)));
        }
        return sb.append(')').toString();
    }

    private static Object read(Method accessor, Object o) {
        try {
            return accessor.invoke(o);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read " + accessor, e);
        }
    }

    private static String encodeValue(Object v) {
        return switch (v) {
            case Shape s -> s.toString();
            case List<?> l -> l.toString().replace(" ", "");
            case Double d -> Double.toString(d);
            default -> String.valueOf(v);
        };
    }

    public static Op decode(String text) {
        int open = text.indexOf('(');
        if (open < 0 || !text.endsWith(")")) throw new IllegalArgumentException("not an op: " + text);
        Class<?> c = OPS.get(text.substring(0, open));
        if (c == null) throw new IllegalArgumentException("unknown op " + text.substring(0, open));
        Map<String, String> attrs = new HashMap<>();
        for (String part : splitTopLevel(text.substring(open + 1, text.length() - 1))) {
            int eq = part.indexOf('=');
            attrs.put(part.substring(0, eq).trim(), part.substring(eq + 1).trim());
        }
        OpForm form = FORMS.get(c);
        RecordComponent[] rc = form.components();
        Object[] args = new Object[rc.length];
        for (int i = 0; i < rc.length; i++) {
            String raw = attrs.get(rc[i].getName());
            if (raw == null) throw new IllegalArgumentException(c.getSimpleName() + ": missing attribute " + rc[i].getName());
            args[i] = decodeValue(rc[i].getType(), raw);
        }
        try {
            return (Op) form.constructor().newInstance(args);
        } catch (ReflectiveOperationException e) {
            throw new IllegalArgumentException("cannot build " + text, e);
        }
    }

    private static Object decodeValue(Class<?> type, String raw) {
        if (type == boolean.class) return Boolean.parseBoolean(raw);
        if (type == int.class) return Integer.parseInt(raw);
        if (type == long.class) return Long.parseLong(raw);
        if (type == double.class) return Double.parseDouble(raw);
        if (type == DType.class) return DType.of(raw);
        if (type == UnaryFn.class) return UnaryFn.valueOf(raw);
        if (type == BinaryFn.class) return BinaryFn.valueOf(raw);
        if (type == ReduceFn.class) return ReduceFn.valueOf(raw);
        if (type == Shape.class) return Shape.of(parseInts(raw));
        if (type == List.class) {
            List<Integer> out = new ArrayList<>();
            for (int i : parseInts(raw)) out.add(i);
            return out;
        }
        throw new IllegalArgumentException("no encoding for attribute type " + type);
    }

    private static int[] parseInts(String raw) {
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
