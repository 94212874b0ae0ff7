package dev.kiln.samples.conformance;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One reference case as described by its {@code case.json}: an op (ONNX op type or
 * {@code kiln.*}), its attributes, the input files (null where an optional input is
 * left out) and the expected output files.
 */
public record ConformanceCase(String name, Path dir, String op, Attributes attributes,
                              List<CaseFile> inputs, List<CaseFile> outputs) {

    /** The file that marks a directory as a case. */
    public static final String DESCRIPTOR = "case.json";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A named array file of a case. */
    public record CaseFile(String name, Path path) {}

    public ConformanceCase {
        inputs = Collections.unmodifiableList(new ArrayList<>(inputs));
        outputs = List.copyOf(outputs);
    }

    /** Reads {@code dir/case.json}; a malformed descriptor raises {@link InvalidCaseException} saying what is wrong. */
    public static ConformanceCase load(Path dir) throws IOException, InvalidCaseException {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(dir.resolve(DESCRIPTOR)));
        } catch (JsonProcessingException e) {
            throw new InvalidCaseException(DESCRIPTOR + " is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) throw new InvalidCaseException(DESCRIPTOR + " must hold a JSON object");
        JsonNode op = root.get("op");
        if (op == null || !op.isTextual() || op.textValue().isBlank()) {
            throw new InvalidCaseException(DESCRIPTOR + ": \"op\" must be a non-empty string");
        }
        return new ConformanceCase(dir.getFileName().toString(), dir, op.textValue(), attributes(root.get("attributes")),
                files(dir, root.get("inputs"), "inputs", true), files(dir, root.get("outputs"), "outputs", false));
    }

    private static Attributes attributes(JsonNode node) throws InvalidCaseException {
        if (node == null || node.isNull()) return Attributes.none();
        if (!node.isObject()) throw new InvalidCaseException(DESCRIPTOR + ": \"attributes\" must be an object");
        Map<String, JsonNode> values = new LinkedHashMap<>();
        node.properties().forEach(e -> values.put(e.getKey(), e.getValue()));
        return new Attributes(values);
    }

    private static List<CaseFile> files(Path dir, JsonNode node, String key, boolean optionalEntries) throws InvalidCaseException {
        if (node == null || !node.isArray()) throw new InvalidCaseException(DESCRIPTOR + ": \"" + key + "\" must be a list");
        if (!optionalEntries && node.isEmpty()) throw new InvalidCaseException(DESCRIPTOR + ": \"" + key + "\" is empty");
        List<CaseFile> out = new ArrayList<>();
        for (int i = 0; i < node.size(); i++) {
            JsonNode entry = node.get(i);
            if (entry.isNull() && optionalEntries) {
                out.add(null);
                continue;
            }
            JsonNode file = entry.get("file");
            if (!entry.isObject() || file == null || !file.isTextual()) {
                throw new InvalidCaseException(DESCRIPTOR + ": " + key + "[" + i + "] needs a \"file\"");
            }
            Path path = dir.resolve(file.textValue()).normalize();
            if (!path.startsWith(dir.normalize())) {
                throw new InvalidCaseException(DESCRIPTOR + ": " + key + "[" + i + "] names a file outside the case directory: "
                        + file.textValue());
            }
            JsonNode name = entry.get("name");
            out.add(new CaseFile(name != null && name.isTextual() ? name.textValue() : key + "[" + i + "]", path));
        }
        return out;
    }

    /** A {@code case.json} that does not follow the case format. */
    public static final class InvalidCaseException extends Exception {
        public InvalidCaseException(String message) { super(message); }
    }
}
