package dev.kiln.opt.npu;

import dev.kiln.ir.OpCodec;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.npu.kernels.gemm.Epilogue;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * A graph lowered for the NPU: values live in numbered slots; the graph's inputs fill
 * {@link #inputs}; {@link #launches} run in order, each reading and writing slots; the
 * results are {@link #outputs}. A launch is a fused tile program, a matmul with a fused
 * epilogue, a memory transfer, or one op run on the eager kernels. Immutable, with a versioned text form ({@link #toText}, {@link #parse})
 * for the kernel cache.
 */
public record KernelProgram(int slots, List<Integer> inputs, List<Launch> launches, List<Integer> outputs, List<Integer> weights) {
    public static final String FORMAT = "kiln-kernel-program v3";

    /** A program without frozen weights. */
    public KernelProgram(int slots, List<Integer> inputs, List<Launch> launches, List<Integer> outputs) {
        this(slots, inputs, launches, outputs, List.of());
    }

    public sealed interface Launch {
        List<Integer> in();
        List<Integer> out();
    }

    /** One op on the eager kernels (through {@code Dispatch}). */
    public record Eager(Op op, List<Integer> in, List<Integer> out) implements Launch {
        public Eager {
            in = List.copyOf(in);
            out = List.copyOf(out);
        }
    }

    /** A fused pointwise kernel producing float32 values of {@code shape}. */
    public record Fused(String name, Shape shape, TileProgram program, List<Integer> in, List<Integer> out) implements Launch {
        public Fused {
            in = List.copyOf(in);
            out = List.copyOf(out);
            if (name.isBlank() || name.contains(" ")) throw new IllegalArgumentException("kernel name must be one word: '" + name + "'");
        }
    }

    /**
     * A float32 matmul of inputs 0 and 1 producing {@code shape}, whose result goes through
     * {@code epilogue} before it is stored; the remaining inputs are the epilogue's operands.
     */
    public record MatMulFused(String name, Shape shape, Epilogue epilogue, List<Integer> in, List<Integer> out) implements Launch {
        public MatMulFused {
            in = List.copyOf(in);
            out = List.copyOf(out);
            if (name.isBlank() || name.contains(" ")) throw new IllegalArgumentException("kernel name must be one word: '" + name + "'");
            if (in.size() != 2 + epilogue.operandCount()) {
                throw new IllegalArgumentException("a matmul with an epilogue of " + epilogue.operandCount() + " operands reads "
                        + (2 + epilogue.operandCount()) + " slots, got " + in);
            }
            if (out.size() != 1) throw new IllegalArgumentException("a matmul writes one slot, got " + out);
        }
    }

    /**
     * A memory transfer: the DMA engine gathers a view of {@code shape} and {@code dtype}
     * (whatever its strides) into a contiguous buffer, for a launch that reads whole tiles.
     */
    public record Transfer(Shape shape, DType dtype, List<Integer> in, List<Integer> out) implements Launch {
        public Transfer {
            in = List.copyOf(in);
            out = List.copyOf(out);
            if (in.size() != 1 || out.size() != 1) throw new IllegalArgumentException("a transfer reads one slot and writes one, got " + in + " > " + out);
        }

        public long bytes() { return shape.numel() * dtype.byteSize(); }
    }

    /**
     * {@code weights}: the input slots that hold frozen weights. A launch that reads only
     * weights, or values computed from weights alone, gives the same result while the same
     * weight tensors are bound, so the command processor runs it once for them (see
     * {@code NpuExecutable}).
     */
    public KernelProgram {
        inputs = List.copyOf(inputs);
        launches = List.copyOf(launches);
        outputs = List.copyOf(outputs);
        weights = List.copyOf(weights);
        for (int w : weights) if (!inputs.contains(w)) throw new IllegalArgumentException("weight slot " + w + " is not an input slot " + inputs);
        boolean[] defined = new boolean[slots];
        for (int s : inputs) defined[check(slots, s)] = true;
        for (Launch l : launches) {
            for (int s : l.in()) {
                if (!defined[check(slots, s)]) throw new IllegalArgumentException("slot " + s + " is read before it is written: " + l);
            }
            for (int s : l.out()) defined[check(slots, s)] = true;
        }
        for (int s : outputs) if (!defined[check(slots, s)]) throw new IllegalArgumentException("output slot " + s + " is never written");
    }

    private static int check(int slots, int s) {
        if (s < 0 || s >= slots) throw new IllegalArgumentException("slot " + s + " out of range [0, " + slots + ")");
        return s;
    }

    public long fusedLaunches() { return launches.stream().filter(l -> l instanceof Fused).count(); }

    public long transfers() { return launches.stream().filter(l -> l instanceof Transfer).count(); }

    // ---------------------------------------------------------------- text form

    public String toText() {
        StringBuilder sb = new StringBuilder(FORMAT).append('\n');
        sb.append("slots ").append(slots).append('\n');
        sb.append("inputs ").append(list(inputs)).append('\n');
        sb.append("weights ").append(list(weights)).append('\n');
        for (Launch l : launches) {
            switch (l) {
                case Eager e -> sb.append("eager ").append(list(e.in())).append(" > ").append(list(e.out())).append(' ')
                        .append(OpCodec.encode(e.op())).append('\n');
                case Fused f -> {
                    String[] body = f.program().toText().strip().split("\n");
                    sb.append("fused ").append(f.name()).append(' ').append(f.shape()).append(' ').append(list(f.in())).append(" > ")
                            .append(list(f.out())).append(' ').append(body.length).append('\n');
                    for (String line : body) sb.append("  ").append(line).append('\n');
                }
                case MatMulFused m -> {
                    String[] body = m.epilogue().program().toText().strip().split("\n");
                    sb.append("matmul ").append(m.name()).append(' ').append(m.shape()).append(' ').append(list(m.in())).append(" > ")
                            .append(list(m.out())).append(' ')
                            .append(m.epilogue().sources().stream().map(Epilogue.Source::token).collect(Collectors.joining(",")))
                            .append(' ').append(body.length).append('\n');
                    for (String line : body) sb.append("  ").append(line).append('\n');
                }
                case Transfer t -> sb.append("transfer ").append(t.dtype()).append(' ').append(t.shape()).append(' ').append(list(t.in()))
                        .append(" > ").append(list(t.out())).append('\n');
            }
        }
        sb.append("outputs ").append(list(outputs)).append('\n');
        return sb.toString();
    }

    private static String list(List<Integer> l) {
        return l.isEmpty() ? "-" : l.stream().map(String::valueOf).collect(Collectors.joining(","));
    }

    /** The {@code count} indented lines after line {@code header}: a launch's tile program. */
    private static String body(String[] lines, int header, int count, String what) {
        if (header + count >= lines.length) throw new IllegalArgumentException("the " + what + " is cut short");
        StringBuilder body = new StringBuilder();
        for (int k = 1; k <= count; k++) body.append(lines[header + k].strip()).append('\n');
        return body.toString();
    }

    private static List<Integer> unlist(String s) {
        if (s.equals("-")) return List.of();
        return Arrays.stream(s.split(",")).map(Integer::parseInt).toList();
    }

    private static Shape shape(String s) {
        if (!s.startsWith("[") || !s.endsWith("]")) throw new IllegalArgumentException("expected a shape [d0,d1,...], got " + s);
        String body = s.substring(1, s.length() - 1);
        return body.isEmpty() ? Shape.SCALAR : Shape.of(Arrays.stream(body.split(",")).mapToInt(Integer::parseInt).toArray());
    }

    /** Reads {@link #toText}'s form; throws IllegalArgumentException naming the bad line. */
    public static KernelProgram parse(String text) {
        String[] lines = text.split("\n");
        if (lines.length == 0 || !lines[0].equals(FORMAT)) {
            throw new IllegalArgumentException("not a kernel program (expected header '" + FORMAT + "')");
        }
        int slots = -1;
        List<Integer> inputs = null, outputs = null, weights = List.of();
        List<Launch> launches = new ArrayList<>();
        for (int i = 1; i < lines.length; i++) {
            String line = lines[i];
            try {
                String[] p = line.split(" ", 2);
                switch (p[0]) {
                    case "slots" -> slots = Integer.parseInt(p[1]);
                    case "inputs" -> inputs = unlist(p[1]);
                    case "weights" -> weights = unlist(p[1]);
                    case "outputs" -> outputs = unlist(p[1]);
                    case "eager" -> {
                        String[] q = p[1].split(" ", 4);
                        if (!q[1].equals(">")) throw new IllegalArgumentException("expected 'in > out op'");
                        launches.add(new Eager(OpCodec.decode(q[3]), unlist(q[0]), unlist(q[2])));
                    }
                    case "fused" -> {
                        String[] q = p[1].split(" ");
                        if (q.length != 6 || !q[3].equals(">")) throw new IllegalArgumentException("expected 'name shape in > out lines'");
                        int count = Integer.parseInt(q[5]);
                        TileProgram program = TileProgram.parse(body(lines, i, count, "tile program"));
                        launches.add(new Fused(q[0], shape(q[1]), program, unlist(q[2]), unlist(q[4])));
                        i += count;
                    }
                    case "matmul" -> {
                        String[] q = p[1].split(" ");
                        if (q.length != 7 || !q[3].equals(">")) throw new IllegalArgumentException("expected 'name shape in > out sources lines'");
                        int count = Integer.parseInt(q[6]);
                        TileProgram program = TileProgram.parse(body(lines, i, count, "epilogue program"));
                        List<Epilogue.Source> sources = Arrays.stream(q[5].split(",")).map(Epilogue.Source::ofToken).toList();
                        launches.add(new MatMulFused(q[0], shape(q[1]), new Epilogue(program, sources),
                                unlist(q[2]), unlist(q[4])));
                        i += count;
                    }
                    case "transfer" -> {
                        String[] q = p[1].split(" ");
                        if (q.length != 5 || !q[3].equals(">")) throw new IllegalArgumentException("expected 'dtype shape in > out'");
                        launches.add(new Transfer(shape(q[1]), DType.of(q[0]), unlist(q[2]), unlist(q[4])));
                    }
                    default -> throw new IllegalArgumentException("unknown entry " + p[0]);
                }
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("kernel program line " + (i + 1) + " '" + line + "': " + e.getMessage(), e);
            }
        }
        if (slots < 0 || inputs == null || outputs == null) throw new IllegalArgumentException("kernel program is missing slots, inputs or outputs");
        return new KernelProgram(slots, inputs, launches, outputs, weights);
    }
}
