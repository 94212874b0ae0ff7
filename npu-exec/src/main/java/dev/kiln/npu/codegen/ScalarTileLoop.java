package dev.kiln.npu.codegen;

import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.npu.kernels.ScalarTwin;
import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumSet;
import java.util.Set;

/**
 * A generated tile loop's scalar twin: the program interpreted an instruction at a time over
 * float arrays, with the same float operations per element as the generated vector code
 * ({@link StageWriter}), so the same bits. A program runs it while its generated loop, a
 * class of its own that the JIT meets for the first time, measures slower (see
 * {@link ScalarTwin}): in a fresh JVM the W4 block's gated epilogue took 73 to 140 ms on its
 * first call, and as much again on its second. A program has one when every instruction has a
 * twin: all but the comparisons, the logical operators, pow and the integer divisions
 * ({@link #of}). Programs of several stages too: the twin computes their outputs from their
 * inputs directly, and nothing reads the slots through which the stages pass intermediates
 * (the rotary tables' cos and sin, one program of two stages, made the tables' first call in a
 * fresh JVM 100 to 160 ms without one, 25 with).
 */
final class ScalarTileLoop implements TileLoop {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    /** Besides the {@link VectorMath} functions. */
    private static final Set<UnaryFn> UNARY = EnumSet.of(UnaryFn.NEG, UnaryFn.ABS, UnaryFn.RELU, UnaryFn.SQRT, UnaryFn.RSQRT,
            UnaryFn.LOGICAL_NOT);
    private static final Set<BinaryFn> BINARY = EnumSet.of(BinaryFn.ADD, BinaryFn.SUB, BinaryFn.MUL, BinaryFn.DIV, BinaryFn.MINIMUM,
            BinaryFn.MAXIMUM);

    private final TileProgram program;
    private final int[] inputSlot, outputSlot;
    private final TileLoop generated;
    private final ScalarTwin twin = new ScalarTwin();

    private ScalarTileLoop(TileProgram program, int[] inputSlot, int[] outputSlot, TileLoop generated) {
        this.program = program;
        this.inputSlot = inputSlot;
        this.outputSlot = outputSlot;
        this.generated = generated;
    }

    /** {@code generated} with a scalar twin when every instruction of {@code program} has one; else {@code generated}. */
    static TileLoop of(TileProgram program, int[] inputSlot, int[] outputSlot, TileLoop generated) {
        for (TileInstr ins : program.instructions()) {
            boolean twinned = switch (ins) {
                case TileInstr.Unary u -> UNARY.contains(u.fn()) || VectorMath.hasScalarTwin(u.fn());
                case TileInstr.Binary b -> BINARY.contains(b.fn());
                default -> true;
            };
            if (!twinned) return generated;
        }
        return new ScalarTileLoop(program, inputSlot.clone(), outputSlot.clone(), generated);
    }

    @Override
    public void run(MemorySegment[] slots, long[] offsets, float[] scalars, int n) {
        if (twin.settled()) {
            generated.run(slots, offsets, scalars, n);
            return;
        }
        boolean scalar = twin.scalarNext(n);
        long start = System.nanoTime();
        if (scalar) interpret(slots, offsets, scalars, n);
        else generated.run(slots, offsets, scalars, n);
        twin.record(scalar, System.nanoTime() - start, n);
    }

    /**
     * Every instruction over all n elements in turn: the inputs are read before any output is
     * written, so an output may share an input's memory as in the generated loop.
     */
    private void interpret(MemorySegment[] slots, long[] offsets, float[] scalars, int n) {
        float[][] r = new float[program.registers()][];
        for (TileInstr ins : program.instructions()) {
            switch (ins) {
                case TileInstr.Load l -> {
                    int s = inputSlot[l.input()];
                    r[l.dst()] = new float[n];
                    MemorySegment.copy(slots[s], F32, offsets[s], r[l.dst()], 0, n);
                }
                case TileInstr.Store st -> {
                    int s = outputSlot[st.output()];
                    MemorySegment.copy(r[st.src()], 0, slots[s], F32, offsets[s], n);
                }
                case TileInstr.Broadcast b -> r[b.dst()] = filled(n, scalars[b.input()]);
                case TileInstr.Constant c -> r[c.dst()] = filled(n, c.value());
                case TileInstr.Unary u -> r[u.dst()] = unary(u.fn(), r[u.src()], n);
                case TileInstr.Binary b -> r[b.dst()] = binary(b.fn(), r[b.a()], r[b.b()], n);
                case TileInstr.Clamp c -> {
                    float[] x = r[c.src()], y = new float[n];
                    for (int i = 0; i < n; i++) y[i] = Math.min(Math.max(x[i], c.min()), c.max());
                    r[c.dst()] = y;
                }
                case TileInstr.Where w -> {
                    float[] cond = r[w.cond()], x = r[w.x()], y = r[w.y()], z = new float[n];
                    for (int i = 0; i < n; i++) z[i] = cond[i] != 0f ? x[i] : y[i];
                    r[w.dst()] = z;
                }
            }
        }
    }

    private static float[] filled(int n, float value) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, value);
        return a;
    }

    /** As {@link StageWriter}'s unary: the eager kernels' expressions, lane by lane. */
    private static float[] unary(UnaryFn fn, float[] x, int n) {
        float[] y = new float[n];
        switch (fn) {
            case NEG -> { for (int i = 0; i < n; i++) y[i] = -x[i]; }
            case ABS -> { for (int i = 0; i < n; i++) y[i] = Math.abs(x[i]); }
            case RELU -> { for (int i = 0; i < n; i++) y[i] = Math.max(x[i], 0f); }
            case SQRT -> { for (int i = 0; i < n; i++) y[i] = (float) Math.sqrt(x[i]); }
            case RSQRT -> { for (int i = 0; i < n; i++) y[i] = 1f / (float) Math.sqrt(x[i]); }
            case LOGICAL_NOT -> { for (int i = 0; i < n; i++) y[i] = x[i] == 0f ? 1f : 0f; }
            default -> {
                System.arraycopy(x, 0, y, 0, n);
                VectorMath.applyScalar(fn, y, n);
            }
        }
        return y;
    }

    private static float[] binary(BinaryFn fn, float[] a, float[] b, int n) {
        float[] y = new float[n];
        switch (fn) {
            case ADD -> { for (int i = 0; i < n; i++) y[i] = a[i] + b[i]; }
            case SUB -> { for (int i = 0; i < n; i++) y[i] = a[i] - b[i]; }
            case MUL -> { for (int i = 0; i < n; i++) y[i] = a[i] * b[i]; }
            case DIV -> { for (int i = 0; i < n; i++) y[i] = a[i] / b[i]; }
            case MINIMUM -> { for (int i = 0; i < n; i++) y[i] = Math.min(a[i], b[i]); }
            case MAXIMUM -> { for (int i = 0; i < n; i++) y[i] = Math.max(a[i], b[i]); }
            default -> throw new IllegalStateException(fn + " has no scalar twin");
        }
        return y;
    }
}
