package dev.kiln.samples.conformance;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Npy;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Storage;
import dev.kiln.tensor.Tensor;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** Writes small conformance cases in the case format, for tests. */
public final class CaseWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private CaseWriter() {}

    /** A case directory {@code root/name}; null inputs are written as left-out optional inputs. */
    public static Path write(Path root, String name, String op, Map<String, ?> attributes, List<Tensor> inputs,
                             List<Tensor> outputs) throws IOException {
        Path dir = Files.createDirectories(root.resolve(name));
        ObjectNode c = JSON.createObjectNode();
        c.put("source", "written by a Kiln test");
        c.put("op", op);
        c.set("attributes", JSON.valueToTree(attributes));
        ArrayNode in = c.putArray("inputs");
        for (int i = 0; i < inputs.size(); i++) {
            if (inputs.get(i) == null) {
                in.addNull();
                continue;
            }
            in.addObject().put("name", "x" + i).put("file", "input_" + i + ".npy");
            Npy.save(inputs.get(i), dir.resolve("input_" + i + ".npy"));
        }
        ArrayNode out = c.putArray("outputs");
        for (int i = 0; i < outputs.size(); i++) {
            out.addObject().put("name", "y" + i).put("file", "output_" + i + ".npy");
            Npy.save(outputs.get(i), dir.resolve("output_" + i + ".npy"));
        }
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve(ConformanceCase.DESCRIPTOR).toFile(), c);
        return dir;
    }

    /** A one-dimensional little-endian complex64 {@code .npy} file, a dtype Kiln does not have (written byte by byte). */
    public static void writeComplex64Npy(Path file, float... realImag) throws IOException {
        String dict = "{'descr': '<c8', 'fortran_order': False, 'shape': (" + realImag.length / 2 + ",), }";
        int unpadded = 10 + dict.length() + 1;
        int total = (unpadded + 63) / 64 * 64;
        String header = dict + " ".repeat(total - unpadded) + "\n";
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0});
        b.write(header.length() & 0xff);
        b.write(header.length() >>> 8);
        b.write(header.getBytes(StandardCharsets.ISO_8859_1));
        for (float f : realImag) {
            int v = Float.floatToRawIntBits(f);
            for (int shift = 0; shift < 32; shift += 8) b.write((v >>> shift) & 0xff);
        }
        Files.write(file, b.toByteArray());
    }

    /** A contiguous tensor of any dtype, written element by element without kernels. */
    public static Tensor tensor(DType dtype, double[] values, int... shape) {
        Shape s = Shape.of(shape);
        if (s.numel() != values.length) throw new IllegalArgumentException(Arrays.toString(shape) + " vs " + values.length);
        Tensor t = Tensor.fromStorage(dtype, Layout.contiguous(s), Storage.allocate(s.numel() * dtype.byteSize()));
        for (int i = 0; i < values.length; i++) Elements.write(dtype, t.storage().segment(), i, values[i]);
        return t;
    }
}
