package dev.kiln.npu.codegen;

import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.npu.kernels.VectorMemory;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.Vector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import net.bytebuddy.implementation.bytecode.ByteCodeAppender;
import net.bytebuddy.jar.asm.Label;
import net.bytebuddy.jar.asm.MethodVisitor;
import net.bytebuddy.jar.asm.Opcodes;
import net.bytebuddy.jar.asm.Type;

import java.lang.foreign.MemorySegment;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;

/**
 * Writes the bytecode of one stage of a {@link TilePlan}: {@code static void stageN(MemorySegment[]
 * slots, long[] offsets, float[] scalars, int n)}, a loop over the first n elements of the slots
 * (slot j at {@code offsets[j]} of {@code slots[j]}, see {@link TileLoop}) with broadcasts,
 * constants and slot addresses hoisted and every value in a local. Slots are native memory,
 * {@link VectorMemory#typed typed} once before the loop.
 */
final class StageWriter {
    private static final Method FROM_SEGMENT = method(FloatVector.class, "fromMemorySegment", VectorSpecies.class, MemorySegment.class,
            long.class, ByteOrder.class);
    private static final Method INTO_SEGMENT = method(FloatVector.class, "intoMemorySegment", MemorySegment.class, long.class, ByteOrder.class);
    private static final Method BROADCAST = method(FloatVector.class, "broadcast", VectorSpecies.class, float.class);
    private static final Method BROADCAST_LIKE = method(FloatVector.class, "broadcast", float.class);
    private static final Method ZERO = method(FloatVector.class, "zero", VectorSpecies.class);
    private static final Method NATIVE_ORDER = method(ByteOrder.class, "nativeOrder");
    private static final Method TYPED = method(VectorMemory.class, "typed", MemorySegment.class);
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
            case SIN -> "sin";
            case COS -> "cos";
            default -> throw new IllegalArgumentException("no VectorMath function for " + fn);
        };
        return method(VectorMath.class, name, FloatVector.class);
    }

    private static final int SLOTS = 0, OFFSETS = 1, SCALARS = 2, N = 3;
    private final TilePlan plan;
    private final int stage;
    private final MethodVisitor mv;
    private int nextLocal = 4;
    private int order, zero, one, index, offset;
    private final int[] slotSegment, slotBase;
    private final Map<Integer, Integer> setupLocal = new HashMap<>();
    /** The local holding each register's current value in this iteration. */
    private final Map<Integer, Integer> current = new HashMap<>();

    StageWriter(TilePlan plan, int stage, MethodVisitor mv) {
        this.plan = plan;
        this.stage = stage;
        this.mv = mv;
        this.slotSegment = new int[plan.slots];
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
        // A setup register an earlier stage overwrote holds that stage's value, read back from SRAM.
        current.keySet().removeAll(plan.inbound.get(stage).keySet());
        for (TileInstr ins : plan.stages.get(stage)) instruction(ins);
        for (int r : plan.spillAtEnd.get(stage).stream().sorted().toList()) store(value(r), plan.spillSlot[r]);
        mv.visitIincInsn(index, TileLoopCompiler.LANES);
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
            setupLocal.put(TilePlan.dst(ins), l);
        }
        for (int j = 0; j < plan.slots; j++) {
            slotSegment[j] = local(1);
            mv.visitVarInsn(Opcodes.ALOAD, SLOTS);
            pushInt(j);
            mv.visitInsn(Opcodes.AALOAD);
            invoke(TYPED);
            mv.visitVarInsn(Opcodes.ASTORE, slotSegment[j]);
            slotBase[j] = local(2);
            mv.visitVarInsn(Opcodes.ALOAD, OFFSETS);
            pushInt(j);
            mv.visitInsn(Opcodes.LALOAD);
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
        mv.visitVarInsn(Opcodes.ALOAD, slotSegment[slot]);
        address(slot);
        mv.visitVarInsn(Opcodes.ALOAD, order);
        invoke(FROM_SEGMENT);
    }

    private void store(int local, int slot) {
        aload(local);
        mv.visitVarInsn(Opcodes.ALOAD, slotSegment[slot]);
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
