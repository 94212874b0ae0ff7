package dev.kiln.samples.conformance;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** The attribute values of an ONNX node, as case.json spells them (numbers, strings, lists). */
public final class Attributes {
    private final Map<String, JsonNode> values;

    Attributes(Map<String, JsonNode> values) {
        this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
    }

    static Attributes none() { return new Attributes(Map.of()); }

    public Set<String> names() { return values.keySet(); }

    public boolean has(String name) { return values.containsKey(name); }

    /** An integer attribute, or {@code fallback} when absent. */
    public long integer(String name, long fallback) {
        JsonNode v = values.get(name);
        if (v == null) return fallback;
        if (!v.isIntegralNumber()) throw wrongType(name, "an integer", v);
        return v.longValue();
    }

    /** A float attribute (integers accepted), or {@code fallback} when absent. */
    public double real(String name, double fallback) {
        JsonNode v = values.get(name);
        if (v == null) return fallback;
        if (!v.isNumber()) throw wrongType(name, "a number", v);
        return v.doubleValue();
    }

    public String string(String name, String fallback) {
        JsonNode v = values.get(name);
        if (v == null) return fallback;
        if (!v.isTextual()) throw wrongType(name, "a string", v);
        return v.textValue();
    }

    /** A list-of-integers attribute, or null when absent. */
    public long[] integers(String name) {
        JsonNode v = values.get(name);
        if (v == null) return null;
        if (!v.isArray()) throw wrongType(name, "a list of integers", v);
        long[] out = new long[v.size()];
        for (int i = 0; i < out.length; i++) {
            if (!v.get(i).isIntegralNumber()) throw wrongType(name, "a list of integers", v);
            out[i] = v.get(i).longValue();
        }
        return out;
    }

    private static IllegalArgumentException wrongType(String name, String expected, JsonNode v) {
        return new IllegalArgumentException("attribute '" + name + "' must be " + expected + ", got " + v);
    }

    @Override
    public String toString() { return values.toString(); }
}
