package dev.kiln.npu.fused;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;

import java.util.ArrayList;
import java.util.List;

/**
 * An immutable fused pointwise kernel: inputs (float32 or bool tiles, or 0-d scalars), a
 * number of float32 outputs of one shape, and straight-line instructions over
 * {@code registers} tile registers. Instructions are checked when the program is built:
 * registers in range and written before they are read, every input kind used as declared,
 * every output stored exactly once.
 *
 * <p>{@link #toText()} / {@link #parse} give a versioned, exact text form (floats as bit
 * patterns) for the kernel cache.
 */
public record TileProgram(List<InputSpec> inputs, int outputs, int registers, List<TileInstr> instructions) {
    public static final String FORMAT = "kiln-tile-program v1";

    /**
     * An input: its dtype and whether it is 0-d. Every dtype is loaded as float32, converted as a
     * cast to float32 converts it (bool as 0 or 1): float32 for the ops, bool for a where
     * condition, any for a cast.
     */
    public record InputSpec(DType dtype, boolean scalar) {
        public InputSpec {
            java.util.Objects.requireNonNull(dtype, "dtype");
        }
    }

    public TileProgram {
        inputs = List.copyOf(inputs);
        instructions = List.copyOf(instructions);
        validate(inputs, outputs, registers, instructions);
    }

    private static void validate(List<InputSpec> inputs, int outputs, int registers, List<TileInstr> code) {
        if (outputs < 1) throw new IllegalArgumentException("a tile program needs an output");
        if (registers < 1) throw new IllegalArgumentException("a tile program needs a register");
        boolean[] written = new boolean[registers];
        boolean[] stored = new boolean[outputs];
        boolean setupDone = false;
        for (TileInstr ins : code) {
            if (!ins.isSetup()) setupDone = true;
            else if (setupDone) throw new IllegalArgumentException("setup instruction after per-tile code: " + ins);
            switch (ins) {
                case TileInstr.Load l -> {
                    input(inputs, l.input(), false, ins);
                    write(written, l.dst(), ins);
                }
                case TileInstr.Broadcast b -> {
                    input(inputs, b.input(), true, ins);
                    write(written, b.dst(), ins);
                }
                case TileInstr.Constant c -> write(written, c.dst(), ins);
                case TileInstr.Store s -> {
                    read(written, s.src(), ins);
                    if (s.output() < 0 || s.output() >= outputs) throw new IllegalArgumentException("no output " + s.output() + ": " + ins);
                    if (stored[s.output()]) throw new IllegalArgumentException("output " + s.output() + " stored twice: " + ins);
                    stored[s.output()] = true;
                }
                case TileInstr.Unary u -> {
                    read(written, u.src(), ins);
                    write(written, u.dst(), ins);
                }
                case TileInstr.Binary b -> {
                    if (b.fn().resultType(DType.FLOAT32) != DType.FLOAT32) throw new IllegalArgumentException("not a float32 op: " + ins);
                    read(written, b.a(), ins);
                    read(written, b.b(), ins);
                    write(written, b.dst(), ins);
                }
                case TileInstr.Clamp c -> {
                    read(written, c.src(), ins);
                    write(written, c.dst(), ins);
                }
                case TileInstr.Where w -> {
                    read(written, w.cond(), ins);
                    read(written, w.x(), ins);
                    read(written, w.y(), ins);
                    write(written, w.dst(), ins);
                }
            }
        }
        for (int o = 0; o < outputs; o++) if (!stored[o]) throw new IllegalArgumentException("output " + o + " is never stored");
    }

    private static void input(List<InputSpec> inputs, int i, boolean scalar, TileInstr ins) {
        if (i < 0 || i >= inputs.size()) throw new IllegalArgumentException("no input " + i + ": " + ins);
        if (inputs.get(i).scalar() != scalar) {
            throw new IllegalArgumentException("input " + i + " is " + (scalar ? "not 0-d" : "0-d") + ": " + ins);
        }
    }

    private static void read(boolean[] written, int r, TileInstr ins) {
        if (r < 0 || r >= written.length || !written[r]) throw new IllegalArgumentException("register r" + r + " read before it is written: " + ins);
    }

    private static void write(boolean[] written, int r, TileInstr ins) {
        if (r < 0 || r >= written.length) throw new IllegalArgumentException("no register r" + r + ": " + ins);
        written[r] = true;
    }

    // ---------------------------------------------------------------- text form

    public String toText() {
        StringBuilder sb = new StringBuilder(FORMAT).append('\n');
        for (InputSpec in : inputs) sb.append("input ").append(in.dtype()).append(in.scalar() ? " scalar" : " tile").append('\n');
        sb.append("outputs ").append(outputs).append('\n');
        sb.append("registers ").append(registers).append('\n');
        for (TileInstr ins : instructions) sb.append(encode(ins)).append('\n');
        return sb.toString();
    }

    private static String encode(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Load l -> "load " + l.input() + " r" + l.dst();
            case TileInstr.Broadcast b -> "broadcast " + b.input() + " r" + b.dst();
            case TileInstr.Constant c -> "constant " + bits(c.value()) + " r" + c.dst();
            case TileInstr.Store s -> "store r" + s.src() + " " + s.output();
            case TileInstr.Unary u -> "unary " + u.fn() + " r" + u.src() + " r" + u.dst();
            case TileInstr.Binary b -> "binary " + b.fn() + " r" + b.a() + " r" + b.b() + " r" + b.dst();
            case TileInstr.Clamp c -> "clamp " + bits(c.min()) + " " + bits(c.max()) + " r" + c.src() + " r" + c.dst();
            case TileInstr.Where w -> "where r" + w.cond() + " r" + w.x() + " r" + w.y() + " r" + w.dst();
        };
    }

    /** Floats as their bit pattern: exact, and NaN payloads and -0 survive. */
    private static String bits(float f) { return String.format("0x%08x", Float.floatToRawIntBits(f)); }

    private static float unbits(String s) {
        if (!s.startsWith("0x")) throw new IllegalArgumentException("expected float bits 0x........, got " + s);
        return Float.intBitsToFloat(Integer.parseUnsignedInt(s.substring(2), 16));
    }

    /** Reads {@link #toText()}'s form; throws IllegalArgumentException naming the bad line. */
    public static TileProgram parse(String text) {
        String[] lines = text.strip().split("\n");
        if (lines.length == 0 || !lines[0].strip().equals(FORMAT)) {
            throw new IllegalArgumentException("not a tile program (expected header '" + FORMAT + "'): " + (lines.length == 0 ? "" : lines[0]));
        }
        List<InputSpec> inputs = new ArrayList<>();
        List<TileInstr> code = new ArrayList<>();
        int outputs = -1, registers = -1;
        for (int i = 1; i < lines.length; i++) {
            String[] p = lines[i].strip().split(" ");
            try {
                switch (p[0]) {
                    case "input" -> inputs.add(new InputSpec(DType.of(p[1]), switch (p[2]) {
                        case "scalar" -> true;
                        case "tile" -> false;
                        default -> throw new IllegalArgumentException("input kind " + p[2]);
                    }));
                    case "outputs" -> outputs = Integer.parseInt(p[1]);
                    case "registers" -> registers = Integer.parseInt(p[1]);
                    case "load" -> code.add(new TileInstr.Load(Integer.parseInt(p[1]), reg(p[2])));
                    case "broadcast" -> code.add(new TileInstr.Broadcast(Integer.parseInt(p[1]), reg(p[2])));
                    case "constant" -> code.add(new TileInstr.Constant(unbits(p[1]), reg(p[2])));
                    case "store" -> code.add(new TileInstr.Store(reg(p[1]), Integer.parseInt(p[2])));
                    case "unary" -> code.add(new TileInstr.Unary(UnaryFn.valueOf(p[1]), reg(p[2]), reg(p[3])));
                    case "binary" -> code.add(new TileInstr.Binary(BinaryFn.valueOf(p[1]), reg(p[2]), reg(p[3]), reg(p[4])));
                    case "clamp" -> code.add(new TileInstr.Clamp(unbits(p[1]), unbits(p[2]), reg(p[3]), reg(p[4])));
                    case "where" -> code.add(new TileInstr.Where(reg(p[1]), reg(p[2]), reg(p[3]), reg(p[4])));
                    default -> throw new IllegalArgumentException("unknown instruction " + p[0]);
                }
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("tile program line " + (i + 1) + " '" + lines[i].strip() + "': " + e.getMessage(), e);
            }
        }
        return new TileProgram(inputs, outputs, registers, code);
    }

    private static int reg(String s) {
        if (!s.startsWith("r")) throw new IllegalArgumentException("expected a register rN, got " + s);
        return Integer.parseInt(s.substring(1));
    }
}
