package dev.kiln.npu.codegen;

import dev.kiln.npu.fused.TileProgram;
import dev.kiln.npu.kernels.VectorMath;
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
import net.bytebuddy.jar.asm.Opcodes;
import net.bytebuddy.matcher.ElementMatchers;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.LinkedHashMap;
import java.util.Map;

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
 * input is read again from its slot. {@link TilePlan} makes these choices, {@link StageWriter}
 * writes each stage's bytecode.
 *
 * <h2>Bits</h2>
 * Every instruction is the exact Vector API expression the eager kernels use for its op,
 * so a generated kernel gives bit for bit the result of running its ops one by one. Class
 * bytes are a function of the program and the vector length only: the class name carries
 * both (a hash of the program text), and {@link #define} checks it when it is handed
 * bytes from a cache.
 */
public final class TileLoopCompiler {
    /** Elements per vector: folded into the generated code, and part of every class name. */
    static final int LANES = VectorMath.SPECIES.length();

    private static final String PACKAGE = TileLoopCompiler.class.getPackageName();
    private static final int MEMO_CAPACITY = 256;
    /**
     * Compiled programs by value (a program record's equality; float constants compare by
     * bits), so that finding one is a hash of a few records: a matmul epilogue looks its loop
     * up on every call.
     */
    private static final Map<TileProgram, Compiled> MEMO = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<TileProgram, Compiled> eldest) { return size() > MEMO_CAPACITY; }
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
        synchronized (MEMO) {
            Compiled c = MEMO.get(program);
            if (c != null) return c;
        }
        return remember(program, instantiate(program, generate(program)));
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
        synchronized (MEMO) {
            Compiled c = MEMO.get(program);
            if (c != null) return c;
        }
        return remember(program, instantiate(program, classBytes));
    }

    private static Compiled remember(TileProgram program, Compiled c) {
        synchronized (MEMO) {
            Compiled earlier = MEMO.putIfAbsent(program, c);
            return earlier != null ? earlier : c;
        }
    }

    /** The class bytes for {@code program}: deterministic, a function of the program and the vector length. */
    public static byte[] generate(TileProgram program) {
        TilePlan plan = new TilePlan(program);
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
                    .withParameters(MemorySegment[].class, long[].class, float[].class, int.class)
                    .intercept(new Implementation.Simple((ByteCodeAppender) (mv, ctx, m) -> new StageWriter(plan, stage, mv).write()));
        }
        b = b.method(ElementMatchers.named("run").and(ElementMatchers.isAbstract()))
                .intercept(new Implementation.Simple((ByteCodeAppender) (mv, ctx, m) -> {
                    for (int s = 0; s < plan.stages.size(); s++) {
                        mv.visitVarInsn(Opcodes.ALOAD, 1);
                        mv.visitVarInsn(Opcodes.ALOAD, 2);
                        mv.visitVarInsn(Opcodes.ALOAD, 3);
                        mv.visitVarInsn(Opcodes.ILOAD, 4);
                        mv.visitMethodInsn(Opcodes.INVOKESTATIC, owner, stageName(s), STAGE_DESCRIPTOR, false);
                    }
                    mv.visitInsn(Opcodes.RETURN);
                    return new ByteCodeAppender.Size(4, 5);
                }));
        try (DynamicType.Unloaded<?> unloaded = b.visit(new AsmVisitorWrapper.ForDeclaredMethods().writerFlags(ClassWriter.COMPUTE_FRAMES))
                .make()) {
            return unloaded.getBytes();
        }
    }

    private static final String STAGE_DESCRIPTOR = "([Ljava/lang/foreign/MemorySegment;[J[FI)V";

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
        TilePlan plan = new TilePlan(program);
        TileLoop loop;
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup().defineHiddenClass(bytes, true);
            loop = (TileLoop) lookup.findConstructor(lookup.lookupClass(), MethodType.methodType(void.class)).invoke();
        } catch (LinkageError | ReflectiveOperationException e) {
            throw new IllegalArgumentException("class bytes of the tile loop do not load: " + e, e);
        } catch (Throwable e) {
            throw new IllegalStateException("tile loop constructor failed", e);
        }
        loop = ScalarTileLoop.of(program, plan.inputSlot, plan.outputSlot, loop);
        return new Compiled(program, loop, bytes, plan.slots, plan.inputSlot, plan.outputSlot, plan.stages.size());
    }
}
