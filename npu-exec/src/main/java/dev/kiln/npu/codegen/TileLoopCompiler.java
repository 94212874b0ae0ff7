package dev.kiln.npu.codegen;

import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.Vector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import net.bytebuddy.ByteBuddy;
import net.bytebuddy.ClassFileVersion;
import net.bytebuddy.asm.AsmVisitorWrapper;
import net.bytebuddy.description.modifier.Ownership;
import net.bytebuddy.description.modifier.TypeManifestation;
import net.bytebuddy.description.modifier.Visibility;
import net.bytebuddy.dynamic.DynamicType;
import net.bytebuddy.dynamic.scaffold.TypeValidation;
import net.bytebuddy.dynamic.scaffold.subclass.ConstructorStrategy;
import net.bytebuddy.implementation.Implementation;
import net.bytebuddy.implementation.bytecode.ByteCodeAppender;
import net.bytebuddy.jar.asm.ClassReader;
import net.bytebuddy.jar.asm.ClassWriter;
import net.bytebuddy.jar.asm.Label;
import net.bytebuddy.jar.asm.MethodVisitor;
import net.bytebuddy.jar.asm.Opcodes;
import net.bytebuddy.jar.asm.Type;
import net.bytebuddy.matcher.ElementMatchers;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Compiles a {@link TileProgram} into a JVM class (with Byte Buddy) whose loop runs the
 * whole instruction list per vector, every value in a local (a register once C2 has
 * compiled it): one pass over the tile instead of one per instruction. Broadcasts and
 * constants are hoisted out of the loop, constants and the vector length folded in; the
 * element count is passed at run time.
 *
 * <h2>Stages</h2>
 * The transcendental functions are {@link VectorMath} calls, shared by every kernel (few
 * distinct hot methods, and they arrive warm). C2 stops inlining such a call once it has
 * parsed too much of the loop before it ({@code NodeCountInliningCutoff}, see VectorMath),
 * and a call left out of line boxes its vectors. Measured: a loop inlines a small function
 * (sigmoid, exp, silu) followed by any other, but not gelu followed by sigmoid. So calls are
 * scheduled as early as their operands allow, the smaller first, and the instructions are
 * cut into stages, each its own static method and compilation, of at most two calls where
 * the first is small (otherwise one), with few other operations before the last call. A
 * value one stage makes and a later one reads passes through an SRAM slot of its own; an
 * input is read again from its slot.
 *
 * <h2>Bits</h2>
 * Every instruction is the exact Vector API expression the eager kernels use for its op,
 * so a generated kernel gives bit for bit the result of running its ops one by one. Class
 * bytes are a function of the program and the vector length only: the class name carries
 * both (a hash of the program text), and {@link #define} checks it when it is handed
 * bytes from a cache.
 */
public final class TileLoopCompiler {
    /** The functions after which a loop still inlines a second call: the three under 200 bytes of bytecode. */
    static final Set<UnaryFn> SMALL_CALLS = EnumSet.of(UnaryFn.EXP, UnaryFn.SIGMOID, UnaryFn.SILU);
    /** A call is inlined only if the loop has not already parsed much before it: at most this many other operations. */
    static final int OPS_BEFORE_CALL = 12;
    /** Caps a stage's size, so no loop grows past what C2 compiles quickly and in full. */
    static final int OPS_PER_STAGE = 48;
    /** Elements per vector: folded into the generated code, and part of every class name. */
    static final int LANES = VectorMath.SPECIES.length();

    private static final String PACKAGE = TileLoopCompiler.class.getPackageName();
    private static final int MEMO_CAPACITY = 256;
    private static final Map<String, Compiled> MEMO = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Compiled> eldest) { return size() > MEMO_CAPACITY; }
    };

    private TileLoopCompiler() {}

    /**
     * A program compiled and loaded: its loop, the class bytes (for the kernel cache), and
     * its SRAM slots: {@code inputSlot[k]} for tile input k (-1 for 0-d inputs), then
     * {@code outputSlot[o]}, then the slots that carry values between stages.
     */
    public record Compiled(TileProgram program, TileLoop loop, byte[] classBytes, int slots, int[] inputSlot, int[] outputSlot,
                           int stages) {
        public Compiled {
            classBytes = classBytes.clone();
            inputSlot = inputSlot.clone();
            outputSlot = outputSlot.clone();
        }

        @Override public byte[] classBytes() { return classBytes.clone(); }
        @Override public int[] inputSlot() { return inputSlot.clone(); }
        @Override public int[] outputSlot() { return outputSlot.clone(); }
    }

    /**
     * The compiled loop of {@code program}: generated and loaded on first request, then shared
     * by every kernel of the same program (and so are its JIT-compiled loops).
     */
    public static Compiled load(TileProgram program) {
        String text = program.toText();
        synchronized (MEMO) {
            Compiled c = MEMO.get(text);
            if (c != null) return c;
        }
        return remember(text, instantiate(program, generate(program)));
    }

    /**
     * Loads {@code classBytes}, from an earlier {@link #generate} of {@code program} (a kernel
     * cache), without generating anything. Throws IllegalArgumentException if the bytes are
     * not a tile loop of this program and vector length, or do not load.
     */
    public static Compiled define(TileProgram program, byte[] classBytes) {
        String name = className(program), found;
        try {
            found = new ClassReader(classBytes).getClassName().replace('/', '.');
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("class bytes of the tile loop " + name + " cannot be read: " + e, e);
        }
        if (!found.equals(name)) {
            throw new IllegalArgumentException("class bytes of " + found + " are not the tile loop " + name + " of this program");
        }
        String text = program.toText();
        synchronized (MEMO) {
            Compiled c = MEMO.get(text);
            if (c != null) return c;
        }
        return remember(text, instantiate(program, classBytes));
    }

    private static Compiled remember(String text, Compiled c) {
        synchronized (MEMO) {
            Compiled earlier = MEMO.putIfAbsent(text, c);
            return earlier != null ? earlier : c;
        }
    }

    /** The class bytes for {@code program}: deterministic, a function of the program and the vector length. */
    public static byte[] generate(TileProgram program) {
        Plan plan = new Plan(program);
        String name = className(program);
        String owner = name.replace('.', '/');
        DynamicType.Builder<?> b = new ByteBuddy(ClassFileVersion.JAVA_V17)
                .with(TypeValidation.DISABLED)
                .with(Implementation.Context.Disabled.Factory.INSTANCE)
                .subclass(Object.class, ConstructorStrategy.Default.DEFAULT_CONSTRUCTOR)
                .implement(TileLoop.class)
                .name(name)
                .modifiers(Visibility.PUBLIC, TypeManifestation.FINAL);
        for (int s = 0; s < plan.stages.size(); s++) {
            int stage = s;
            b = b.defineMethod(stageName(s), void.class, Visibility.PRIVATE, Ownership.STATIC)
                    .withParameters(MemorySegment.class, float[].class, long.class, int.class)
                    .intercept(new Implementation.Simple((ByteCodeAppender) (mv, ctx, m) -> new StageWriter(plan, stage, mv).write()));
        }
        b = b.method(ElementMatchers.named("run").and(ElementMatchers.isAbstract()))
                .intercept(new Implementation.Simple((ByteCodeAppender) (mv, ctx, m) -> {
                    for (int s = 0; s < plan.stages.size(); s++) {
                        mv.visitVarInsn(Opcodes.ALOAD, 1);
                        mv.visitVarInsn(Opcodes.ALOAD, 2);
                        mv.visitVarInsn(Opcodes.LLOAD, 3);
                        mv.visitVarInsn(Opcodes.ILOAD, 5);
                        mv.visitMethodInsn(Opcodes.INVOKESTATIC, owner, stageName(s), STAGE_DESCRIPTOR, false);
                    }
                    mv.visitInsn(Opcodes.RETURN);
                    return new ByteCodeAppender.Size(5, 6);
                }));
        try (DynamicType.Unloaded<?> unloaded = b.visit(new AsmVisitorWrapper.ForDeclaredMethods().writerFlags(ClassWriter.COMPUTE_FRAMES))
                .make()) {
            return unloaded.getBytes();
        }
    }

    private static final String STAGE_DESCRIPTOR = "(Ljava/lang/foreign/MemorySegment;[FJI)V";

    private static String stageName(int s) { return "stage" + s; }

    /** The generated class's name: the vector length and a hash of the program text. */
    static String className(TileProgram program) {
        try {
            byte[] h = MessageDigest.getInstance("SHA-256").digest(program.toText().getBytes(StandardCharsets.UTF_8));
            return PACKAGE + ".TileLoop$L" + LANES + "$" + java.util.HexFormat.of().formatHex(h, 0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every Java platform", e);
        }
    }

    /** Loads {@code bytes} as a new class, outside the memo. */
    static Compiled instantiate(TileProgram program, byte[] bytes) {
        Plan plan = new Plan(program);
        TileLoop loop;
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup().defineHiddenClass(bytes, true);
            loop = (TileLoop) lookup.findConstructor(lookup.lookupClass(), MethodType.methodType(void.class)).invoke();
        } catch (LinkageError | ReflectiveOperationException e) {
            throw new IllegalArgumentException("class bytes of the tile loop do not load: " + e, e);
        } catch (Throwable e) {
            throw new IllegalStateException("tile loop constructor failed", e);
        }
        return new Compiled(program, loop, bytes, plan.slots, plan.inputSlot, plan.outputSlot, plan.stages.size());
    }

    // ---------------------------------------------------------------- plan

    /**
     * The program cut into stages, with its slot layout: which registers a stage reads from
     * an earlier stage (spilled there at the end of the writing stage).
     */
    static final class Plan {
        final TileProgram program;
        final List<TileInstr> setup = new ArrayList<>();
        final List<List<TileInstr>> stages = new ArrayList<>();
        final int[] inputSlot, outputSlot;
        /** Slot of each register carried between stages (its value not a plain load), else -1. */
        final int[] spillSlot;
        /** Per stage, the registers whose value at the stage's end a later stage reads from their spill slot. */
        final List<Set<Integer>> spillAtEnd = new ArrayList<>();
        /** Per stage, the slot to read each register from that an earlier stage wrote: a spill slot, or the input slot it was loaded from. */
        final List<Map<Integer, Integer>> inbound = new ArrayList<>();
        final int slots;

        Plan(TileProgram program) {
            this.program = program;
            List<TileInstr> body = new ArrayList<>();
            for (TileInstr ins : program.instructions()) (ins.isSetup() ? setup : body).add(ins);
            cut(body);
            int next = 0;
            inputSlot = new int[program.inputs().size()];
            for (int k = 0; k < inputSlot.length; k++) inputSlot[k] = program.inputs().get(k).scalar() ? -1 : next++;
            outputSlot = new int[program.outputs()];
            for (int o = 0; o < outputSlot.length; o++) outputSlot[o] = next++;
            spillSlot = new int[program.registers()];
            Arrays.fill(spillSlot, -1);
            int[] writtenIn = new int[program.registers()];
            Arrays.fill(writtenIn, -1);
            // A register holding an input tile is read again from the input's slot, which no stage overwrites.
            int[] loadedFrom = new int[program.registers()];
            Arrays.fill(loadedFrom, -1);
            for (int s = 0; s < stages.size(); s++) {
                spillAtEnd.add(new HashSet<>());
                inbound.add(new HashMap<>());
            }
            for (int s = 0; s < stages.size(); s++) {
                for (TileInstr ins : stages.get(s)) {
                    for (int r : reads(ins)) {
                        int w = writtenIn[r];
                        if (w < 0 || w == s || inbound.get(s).containsKey(r)) continue;
                        if (loadedFrom[r] >= 0) {
                            inbound.get(s).put(r, loadedFrom[r]);
                        } else {
                            spillAtEnd.get(w).add(r);
                            if (spillSlot[r] < 0) spillSlot[r] = next++;
                            inbound.get(s).put(r, spillSlot[r]);
                        }
                    }
                    int d = dst(ins);
                    if (d >= 0) {
                        writtenIn[d] = s;
                        loadedFrom[d] = ins instanceof TileInstr.Load l ? inputSlot[l.input()] : -1;
                    }
                }
            }
            slots = next;
        }

        /** Greedy: a new stage when a call could not be inlined after what the stage already holds, or the stage is full. */
        private void cut(List<TileInstr> body) {
            List<TileInstr> stage = new ArrayList<>();
            int calls = 0, ops = 0;
            boolean firstCallSmall = false;
            for (TileInstr ins : schedule(body)) {
                boolean call = isCall(ins);
                boolean inlinable = ops <= OPS_BEFORE_CALL && (calls == 0 || (calls == 1 && firstCallSmall));
                if ((stage.size() >= OPS_PER_STAGE || (call && !inlinable)) && !stage.isEmpty()) {
                    stages.add(stage);
                    stage = new ArrayList<>();
                    calls = 0;
                    ops = 0;
                }
                stage.add(ins);
                if (call) {
                    if (calls == 0) firstCallSmall = isSmallCall(ins);
                    calls++;
                } else {
                    ops++;
                }
            }
            if (!stage.isEmpty() || stages.isEmpty()) stages.add(stage);
        }
    }

    /**
     * The body reordered so that each call comes as early as its operands allow (the smaller
     * first when several could), everything else in program order: a list schedule that
     * keeps every read after its write and every write after the reads of the value it replaces.
     */
    static List<TileInstr> schedule(List<TileInstr> body) {
        List<TileInstr> remaining = new ArrayList<>(body), order = new ArrayList<>();
        while (!remaining.isEmpty()) {
            int pick = 0;
            for (int i = 1; i < remaining.size(); i++) {
                TileInstr c = remaining.get(i);
                if (!isCall(c) || !movableToFront(remaining, i)) continue;
                if (!isCall(remaining.get(pick)) || (isSmallCall(c) && !isSmallCall(remaining.get(pick)))) pick = i;
            }
            order.add(remaining.remove(pick));
        }
        return order;
    }

    /** Whether remaining[i] can run before all of remaining[0..i): no register it reads or writes is written or read there. */
    private static boolean movableToFront(List<TileInstr> remaining, int i) {
        TileInstr c = remaining.get(i);
        int d = dst(c);
        for (int j = 0; j < i; j++) {
            TileInstr e = remaining.get(j);
            int w = dst(e);
            for (int r : reads(c)) if (r == w) return false;
            if (d >= 0 && (d == w || Arrays.stream(reads(e)).anyMatch(r -> r == d))) return false;
        }
        return true;
    }

    /** A call after which another can still be inlined: a small VectorMath function, or a lane-by-lane helper (which boxes anyway). */
    static boolean isSmallCall(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Unary u -> SMALL_CALLS.contains(u.fn()) || u.fn() == UnaryFn.SIN || u.fn() == UnaryFn.COS;
            case TileInstr.Binary b -> laneByLane(b.fn());
            default -> false;
        };
    }

    static boolean isCall(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Unary u -> switch (u.fn()) {
                case NEG, ABS, RELU, SQRT, RSQRT, LOGICAL_NOT -> false;
                default -> true;
            };
            case TileInstr.Binary b -> laneByLane(b.fn());
            default -> false;
        };
    }

    private static boolean laneByLane(BinaryFn fn) {
        return fn == BinaryFn.POW || fn == BinaryFn.TRUNC_DIV || fn == BinaryFn.FLOOR_DIV;
    }

    static int[] reads(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Store s -> new int[] {s.src()};
            case TileInstr.Unary u -> new int[] {u.src()};
            case TileInstr.Binary b -> new int[] {b.a(), b.b()};
            case TileInstr.Clamp c -> new int[] {c.src()};
            case TileInstr.Where w -> new int[] {w.cond(), w.x(), w.y()};
            case TileInstr.Load l -> new int[0];
            case TileInstr.Broadcast b -> new int[0];
            case TileInstr.Constant c -> new int[0];
        };
    }

    static int dst(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Load l -> l.dst();
            case TileInstr.Broadcast b -> b.dst();
            case TileInstr.Constant c -> c.dst();
            case TileInstr.Unary u -> u.dst();
            case TileInstr.Binary b -> b.dst();
            case TileInstr.Clamp c -> c.dst();
            case TileInstr.Where w -> w.dst();
            case TileInstr.Store s -> -1;
        };
    }

    // ---------------------------------------------------------------- bytecode

    private static final Method FROM_SEGMENT = method(FloatVector.class, "fromMemorySegment", VectorSpecies.class, MemorySegment.class,
            long.class, ByteOrder.class);
    private static final Method INTO_SEGMENT = method(FloatVector.class, "intoMemorySegment", MemorySegment.class, long.class, ByteOrder.class);
    private static final Method BROADCAST = method(FloatVector.class, "broadcast", VectorSpecies.class, float.class);
    private static final Method BROADCAST_LIKE = method(FloatVector.class, "broadcast", float.class);
    private static final Method ZERO = method(FloatVector.class, "zero", VectorSpecies.class);
    private static final Method NATIVE_ORDER = method(ByteOrder.class, "nativeOrder");
    private static final Method NEG = method(FloatVector.class, "neg"), ABS = method(FloatVector.class, "abs"),
            SQRT = method(FloatVector.class, "sqrt");
    private static final Method ADD = method(FloatVector.class, "add", Vector.class), SUB = method(FloatVector.class, "sub", Vector.class),
            MUL = method(FloatVector.class, "mul", Vector.class), DIV = method(FloatVector.class, "div", Vector.class),
            MIN = method(FloatVector.class, "min", Vector.class), MAX = method(FloatVector.class, "max", Vector.class);
    private static final Method MAX_SCALAR = method(FloatVector.class, "max", float.class),
            MIN_SCALAR = method(FloatVector.class, "min", float.class);
    private static final Method EQ_SCALAR = method(FloatVector.class, "eq", float.class);
    private static final Method COMPARE = method(FloatVector.class, "compare", VectorOperators.Comparison.class, Vector.class);
    private static final Method COMPARE_SCALAR = method(FloatVector.class, "compare", VectorOperators.Comparison.class, float.class);
    private static final Method BLEND = method(FloatVector.class, "blend", Vector.class, VectorMask.class);
    private static final Method BLEND_SCALAR = method(FloatVector.class, "blend", float.class, VectorMask.class);
    private static final Method MASK_AND = method(VectorMask.class, "and", VectorMask.class),
            MASK_OR = method(VectorMask.class, "or", VectorMask.class), MASK_EQ = method(VectorMask.class, "eq", VectorMask.class),
            MASK_NOT = method(VectorMask.class, "not");
    private static final Method LANE_UNARY = method(LaneOps.class, "unary", UnaryFn.class, FloatVector.class);
    private static final Method LANE_BINARY = method(LaneOps.class, "binary", BinaryFn.class, FloatVector.class, FloatVector.class);

    private static Method method(Class<?> owner, String name, Class<?>... parameters) {
        try {
            return owner.getMethod(name, parameters);
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException("the Vector API lacks " + owner.getSimpleName() + "." + name, e);
        }
    }

    private static Method vectorMath(UnaryFn fn) {
        String name = switch (fn) {
            case EXP -> "exp";
            case LOG -> "log";
            case TANH -> "tanh";
            case SIGMOID -> "sigmoid";
            case SILU -> "silu";
            case SOFTPLUS -> "softplus";
            case ERF -> "erf";
            case GELU -> "gelu";
            case GELU_TANH -> "geluTanh";
            default -> throw new IllegalArgumentException("no VectorMath function for " + fn);
        };
        return method(VectorMath.class, name, FloatVector.class);
    }

    /** Writes one stage: {@code static void stageN(MemorySegment sram, float[] scalars, long slotBytes, int n)}. */
    private static final class StageWriter {
        private static final int SRAM = 0, SCALARS = 1, SLOT_BYTES = 2, N = 4;
        private final Plan plan;
        private final int stage;
        private final MethodVisitor mv;
        private int nextLocal = 5;
        private int order, zero, one, index, offset;
        private final int[] slotBase;
        private final Map<Integer, Integer> setupLocal = new HashMap<>();
        /** The local holding each register's current value in this iteration. */
        private final Map<Integer, Integer> current = new HashMap<>();

        StageWriter(Plan plan, int stage, MethodVisitor mv) {
            this.plan = plan;
            this.stage = stage;
            this.mv = mv;
            this.slotBase = new int[plan.slots];
        }

        ByteCodeAppender.Size write() {
            prologue();
            Label head = new Label(), end = new Label();
            mv.visitInsn(Opcodes.ICONST_0);
            mv.visitVarInsn(Opcodes.ISTORE, index);
            mv.visitLabel(head);
            mv.visitVarInsn(Opcodes.ILOAD, index);
            mv.visitVarInsn(Opcodes.ILOAD, N);
            mv.visitJumpInsn(Opcodes.IF_ICMPGE, end);
            mv.visitVarInsn(Opcodes.ILOAD, index);
            mv.visitInsn(Opcodes.I2L);
            mv.visitInsn(Opcodes.ICONST_2);
            mv.visitInsn(Opcodes.LSHL);
            mv.visitVarInsn(Opcodes.LSTORE, offset);
            current.clear();
            current.putAll(setupLocal);
            for (TileInstr ins : plan.stages.get(stage)) instruction(ins);
            for (int r : plan.spillAtEnd.get(stage).stream().sorted().toList()) store(value(r), plan.spillSlot[r]);
            mv.visitIincInsn(index, LANES);
            mv.visitJumpInsn(Opcodes.GOTO, head);
            mv.visitLabel(end);
            mv.visitInsn(Opcodes.RETURN);
            // Maxima are recomputed by the class writer (COMPUTE_FRAMES).
            return new ByteCodeAppender.Size(8, nextLocal);
        }

        private int local(int size) {
            int l = nextLocal;
            nextLocal += size;
            return l;
        }

        private void prologue() {
            order = local(1);
            invoke(NATIVE_ORDER);
            mv.visitVarInsn(Opcodes.ASTORE, order);
            zero = local(1);
            species();
            invoke(ZERO);
            mv.visitVarInsn(Opcodes.ASTORE, zero);
            one = local(1);
            broadcastConstant(1f);
            mv.visitVarInsn(Opcodes.ASTORE, one);
            for (TileInstr ins : plan.setup) {
                switch (ins) {
                    case TileInstr.Broadcast b -> {
                        species();
                        mv.visitVarInsn(Opcodes.ALOAD, SCALARS);
                        pushInt(b.input());
                        mv.visitInsn(Opcodes.FALOAD);
                        invoke(BROADCAST);
                    }
                    case TileInstr.Constant c -> broadcastConstant(c.value());
                    default -> throw new IllegalStateException("not a setup instruction: " + ins);
                }
                int l = local(1);
                mv.visitVarInsn(Opcodes.ASTORE, l);
                setupLocal.put(dst(ins), l);
            }
            for (int j = 0; j < plan.slots; j++) {
                slotBase[j] = local(2);
                mv.visitVarInsn(Opcodes.LLOAD, SLOT_BYTES);
                mv.visitLdcInsn((long) j);
                mv.visitInsn(Opcodes.LMUL);
                mv.visitVarInsn(Opcodes.LSTORE, slotBase[j]);
            }
            index = local(1);
            offset = local(2);
        }

        private void instruction(TileInstr ins) {
            switch (ins) {
                case TileInstr.Load l -> {
                    load(plan.inputSlot[l.input()]);
                    define(l.dst());
                }
                case TileInstr.Store s -> store(value(s.src()), plan.outputSlot[s.output()]);
                case TileInstr.Unary u -> {
                    unary(u.fn(), value(u.src()));
                    define(u.dst());
                }
                case TileInstr.Binary b -> {
                    binary(b.fn(), value(b.a()), value(b.b()));
                    define(b.dst());
                }
                case TileInstr.Clamp c -> {
                    // min(max(x, lo), hi), as the eager clamp.
                    aload(value(c.src()));
                    mv.visitLdcInsn(c.min());
                    invoke(MAX_SCALAR);
                    mv.visitLdcInsn(c.max());
                    invoke(MIN_SCALAR);
                    define(c.dst());
                }
                case TileInstr.Where w -> {
                    // y.blend(x, cond != 0)
                    aload(value(w.y()));
                    aload(value(w.x()));
                    aload(value(w.cond()));
                    comparison("NE");
                    mv.visitInsn(Opcodes.FCONST_0);
                    invoke(COMPARE_SCALAR);
                    invoke(BLEND);
                    define(w.dst());
                }
                case TileInstr.Broadcast b -> throw new IllegalStateException("setup instruction in a stage: " + b);
                case TileInstr.Constant c -> throw new IllegalStateException("setup instruction in a stage: " + c);
            }
        }

        /** The same expressions as FloatKernels' loops, so the results are bit for bit the eager ones. */
        private void unary(UnaryFn fn, int x) {
            switch (fn) {
                case NEG -> { aload(x); invoke(NEG); }
                case ABS -> { aload(x); invoke(ABS); }
                case RELU -> { aload(x); mv.visitInsn(Opcodes.FCONST_0); invoke(MAX_SCALAR); }
                case SQRT -> { aload(x); invoke(SQRT); }
                case RSQRT -> { aload(one); aload(x); invoke(SQRT); invoke(DIV); }
                case LOGICAL_NOT -> {
                    aload(x);
                    mv.visitInsn(Opcodes.FCONST_0);
                    invoke(BROADCAST_LIKE);
                    mv.visitInsn(Opcodes.FCONST_1);
                    aload(x);
                    mv.visitInsn(Opcodes.FCONST_0);
                    invoke(EQ_SCALAR);
                    invoke(BLEND_SCALAR);
                }
                case SIN, COS -> {
                    enumConstant(UnaryFn.class, fn.name());
                    aload(x);
                    invoke(LANE_UNARY);
                }
                default -> { aload(x); invoke(vectorMath(fn)); }
            }
        }

        private void binary(BinaryFn fn, int a, int b) {
            switch (fn) {
                case ADD -> arithmetic(ADD, a, b);
                case SUB -> arithmetic(SUB, a, b);
                case MUL -> arithmetic(MUL, a, b);
                case DIV -> arithmetic(DIV, a, b);
                case MINIMUM -> arithmetic(MIN, a, b);
                case MAXIMUM -> arithmetic(MAX, a, b);
                case EQ, NE, LT, LE, GT, GE -> {
                    aload(zero);
                    mv.visitInsn(Opcodes.FCONST_1);
                    aload(a);
                    comparison(fn.name());
                    aload(b);
                    invoke(COMPARE);
                    invoke(BLEND_SCALAR);
                }
                case LOGICAL_AND, LOGICAL_OR, LOGICAL_XOR -> {
                    aload(zero);
                    mv.visitInsn(Opcodes.FCONST_1);
                    nonZero(a);
                    nonZero(b);
                    switch (fn) {
                        case LOGICAL_AND -> invoke(MASK_AND);
                        case LOGICAL_OR -> invoke(MASK_OR);
                        default -> { invoke(MASK_EQ); invoke(MASK_NOT); }
                    }
                    invoke(BLEND_SCALAR);
                }
                case POW, TRUNC_DIV, FLOOR_DIV -> {
                    enumConstant(BinaryFn.class, fn.name());
                    aload(a);
                    aload(b);
                    invoke(LANE_BINARY);
                }
            }
        }

        private void arithmetic(Method op, int a, int b) {
            aload(a);
            aload(b);
            invoke(op);
        }

        private void nonZero(int x) {
            aload(x);
            comparison("NE");
            mv.visitInsn(Opcodes.FCONST_0);
            invoke(COMPARE_SCALAR);
        }

        private void comparison(String name) {
            mv.visitFieldInsn(Opcodes.GETSTATIC, Type.getInternalName(VectorOperators.class), name,
                    Type.getDescriptor(VectorOperators.Comparison.class));
        }

        private void enumConstant(Class<?> type, String name) {
            mv.visitFieldInsn(Opcodes.GETSTATIC, Type.getInternalName(type), name, Type.getDescriptor(type));
        }

        /** The local with register r's value: computed in this stage, a hoisted setup value, or read back from its spill slot. */
        private int value(int r) {
            Integer l = current.get(r);
            if (l != null) return l;
            Integer slot = plan.inbound.get(stage).get(r);
            if (slot == null) throw new IllegalStateException("register r" + r + " has no value in stage " + stage);
            load(slot);
            return define(r);
        }

        private int define(int r) {
            int l = local(1);
            mv.visitVarInsn(Opcodes.ASTORE, l);
            current.put(r, l);
            return l;
        }

        private void load(int slot) {
            species();
            mv.visitVarInsn(Opcodes.ALOAD, SRAM);
            address(slot);
            mv.visitVarInsn(Opcodes.ALOAD, order);
            invoke(FROM_SEGMENT);
        }

        private void store(int local, int slot) {
            aload(local);
            mv.visitVarInsn(Opcodes.ALOAD, SRAM);
            address(slot);
            mv.visitVarInsn(Opcodes.ALOAD, order);
            invoke(INTO_SEGMENT);
        }

        private void address(int slot) {
            mv.visitVarInsn(Opcodes.LLOAD, slotBase[slot]);
            mv.visitVarInsn(Opcodes.LLOAD, offset);
            mv.visitInsn(Opcodes.LADD);
        }

        private void species() {
            mv.visitFieldInsn(Opcodes.GETSTATIC, Type.getInternalName(VectorMath.class), "SPECIES", Type.getDescriptor(VectorSpecies.class));
        }

        private void broadcastConstant(float value) {
            species();
            mv.visitLdcInsn(value);
            invoke(BROADCAST);
        }

        private void pushInt(int v) { mv.visitLdcInsn(v); }

        private void aload(int local) { mv.visitVarInsn(Opcodes.ALOAD, local); }

        private void invoke(Method m) {
            boolean isStatic = Modifier.isStatic(m.getModifiers());
            boolean isInterface = m.getDeclaringClass().isInterface();
            int opcode = isStatic ? Opcodes.INVOKESTATIC : isInterface ? Opcodes.INVOKEINTERFACE : Opcodes.INVOKEVIRTUAL;
            mv.visitMethodInsn(opcode, Type.getInternalName(m.getDeclaringClass()), m.getName(), Type.getMethodDescriptor(m), isInterface);
        }
    }
}
