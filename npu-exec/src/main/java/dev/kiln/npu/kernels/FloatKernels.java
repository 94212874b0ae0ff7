package dev.kiln.npu.kernels;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Float32 vector loops over contiguous runs of whole vectors (see {@link FloatBlocks}).
 *
 * <p>A vector only stays in registers if everything it passes through is inlined into
 * the compiled loop; any call the JIT does not inline boxes it (an allocation per vector,
 * ten times slower). Each loop therefore calls one {@link VectorMath} function, first,
 * and stores its result with the Vector API directly rather than through a helper, which
 * might fall beyond the JIT's inlining budget (see {@link VectorMath}). One method per
 * op keeps each loop its own compilation unit: a loop is hot, and compiled, before the
 * dispatching switch is, and compiled it is larger than C2 inlines into a caller (over
 * {@code InlineSmallCode}), so the switch calls the loops instead of merging them into
 * one over-budget compilation.
 */
final class FloatKernels {
    private static final VectorSpecies<Float> S = VectorMath.SPECIES;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private FloatKernels() {}

    private static FloatVector ld(MemorySegment s, long off, int i) {
        return FloatVector.fromMemorySegment(S, s, off + (long) i * Float.BYTES, NATIVE);
    }

    private static void st(FloatVector v, MemorySegment s, long off, int i) {
        v.intoMemorySegment(s, off + (long) i * Float.BYTES, NATIVE);
    }

    private static float get(MemorySegment s, long off, int i) {
        return s.get(Staging.F32, off + (long) i * Float.BYTES);
    }

    private static void set(MemorySegment s, long off, int i, float v) {
        s.set(Staging.F32, off + (long) i * Float.BYTES, v);
    }

    // ---------------------------------------------------------------- unary

    static void unary(UnaryFn fn, MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        switch (fn) {
            case NEG -> neg(a, ao, o, oo, n);
            case ABS -> abs(a, ao, o, oo, n);
            case RELU -> relu(a, ao, o, oo, n);
            case SQRT -> sqrt(a, ao, o, oo, n);
            case RSQRT -> rsqrt(a, ao, o, oo, n);
            case LOGICAL_NOT -> logicalNot(a, ao, o, oo, n);
            case EXP, LOG, TANH, SIGMOID, ERF, GELU, GELU_TANH, SILU, SOFTPLUS, SIN, COS -> eitherWay(fn, a, ao, o, oo, n);
        }
    }

    /**
     * The transcendental functions run their scalar twins (bit-identical, see {@link ScalarTwin})
     * while their vector loops are slower: the W4 block's first silu, over 393,216 floats in a
     * fresh JVM, took 80 to 190 ms in the interpreter and C1, its scalar twin 25 to 35 ms.
     */
    private static final java.util.Map<UnaryFn, ScalarTwin> TWINS = new java.util.EnumMap<>(UnaryFn.class);

    static {
        for (UnaryFn fn : UnaryFn.values()) if (VectorMath.hasScalarTwin(fn)) TWINS.put(fn, new ScalarTwin());
    }

    private static void eitherWay(UnaryFn fn, MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        ScalarTwin twin = TWINS.get(fn);
        if (twin.settled()) {
            vectorLoop(fn, a, ao, o, oo, n);
            return;
        }
        boolean scalar = twin.scalarNext(n);
        long start = System.nanoTime();
        if (scalar) scalarLoop(fn, a, ao, o, oo, n);
        else vectorLoop(fn, a, ao, o, oo, n);
        twin.record(scalar, System.nanoTime() - start, n);
    }

    private static void vectorLoop(UnaryFn fn, MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        switch (fn) {
            case EXP -> exp(a, ao, o, oo, n);
            case LOG -> log(a, ao, o, oo, n);
            case TANH -> tanh(a, ao, o, oo, n);
            case SIGMOID -> sigmoid(a, ao, o, oo, n);
            case ERF -> erf(a, ao, o, oo, n);
            case GELU -> gelu(a, ao, o, oo, n);
            case GELU_TANH -> geluTanh(a, ao, o, oo, n);
            case SILU -> silu(a, ao, o, oo, n);
            case SOFTPLUS -> softplus(a, ao, o, oo, n);
            case SIN -> sin(a, ao, o, oo, n);
            case COS -> cos(a, ao, o, oo, n);
            default -> throw new IllegalStateException(fn + " has no scalar twin");
        }
    }

    /** The scalar twins over a run copied to the heap and back: a scalar segment access costs C1 several times more. */
    private static void scalarLoop(UnaryFn fn, MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        float[] v = new float[n];
        MemorySegment.copy(a, Staging.F32, ao, v, 0, n);
        VectorMath.applyScalar(fn, v, n);
        MemorySegment.copy(v, 0, o, Staging.F32, oo, n);
    }

    private static void neg(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).neg(), o, oo, i);
    }

    private static void abs(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).abs(), o, oo, i);
    }

    /** max propagates NaN, and max(-0, 0) = +0 as the reference gives. */
    private static void relu(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).max(0f), o, oo, i);
    }

    private static void sqrt(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).sqrt(), o, oo, i);
    }

    /** Two correctly rounded steps: within 1 ulp of the exact 1/sqrt(x). */
    private static void rsqrt(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (int i = 0; i < n; i += L) st(one.div(ld(a, ao, i).sqrt()), o, oo, i);
    }

    private static void logicalNot(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector v = ld(a, ao, i);
            st(v.broadcast(0f).blend(1f, v.eq(0f)), o, oo, i);
        }
    }

    // The transcendental loops store with intoMemorySegment directly: see the class comment.

    private static void exp(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.exp(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void log(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.log(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void tanh(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.tanh(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void sigmoid(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.sigmoid(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void sin(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.sin(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void cos(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.cos(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void silu(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.silu(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void softplus(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.softplus(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void erf(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.erf(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void gelu(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.gelu(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    private static void geluTanh(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) VectorMath.geluTanh(ld(a, ao, i)).intoMemorySegment(o, oo + (long) i * Float.BYTES, NATIVE);
    }

    /** A plain copy: the conversion happened while staging, or happens on store. */
    static void identity(MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        MemorySegment.copy(a, ao, o, oo, (long) n * Float.BYTES);
    }

    // ---------------------------------------------------------------- binary

    static void binary(BinaryFn fn, MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        switch (fn) {
            case ADD -> add(a, ao, b, bo, o, oo, n);
            case SUB -> sub(a, ao, b, bo, o, oo, n);
            case MUL -> mul(a, ao, b, bo, o, oo, n);
            case DIV -> div(a, ao, b, bo, o, oo, n);
            case MINIMUM -> min(a, ao, b, bo, o, oo, n);
            case MAXIMUM -> max(a, ao, b, bo, o, oo, n);
            case EQ, NE, LT, LE, GT, GE -> compare(fn, a, ao, b, bo, o, oo, n);
            case LOGICAL_AND, LOGICAL_OR, LOGICAL_XOR -> logical(fn, a, ao, b, bo, o, oo, n);
            // Rounded in double as the reference defines them (floor of the double quotient,
            // not of the float one, which may already have rounded up to an integer).
            case POW, TRUNC_DIV, FLOOR_DIV -> {
                for (int i = 0; i < n; i++) set(o, oo, i, (float) fn.apply(get(a, ao, i), get(b, bo, i)));
            }
        }
    }

    // One method per op, so that each loop is its own compilation unit (see the class comment).

    private static void add(MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).add(ld(b, bo, i)), o, oo, i);
    }

    private static void sub(MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).sub(ld(b, bo, i)), o, oo, i);
    }

    private static void mul(MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).mul(ld(b, bo, i)), o, oo, i);
    }

    private static void div(MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).div(ld(b, bo, i)), o, oo, i);
    }

    /** Vector MIN/MAX follow Math.min/max: NaN propagates, -0 < +0. */
    private static void min(MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).min(ld(b, bo, i)), o, oo, i);
    }

    private static void max(MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).max(ld(b, bo, i)), o, oo, i);
    }

    private static void compare(BinaryFn fn, MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        VectorOperators.Comparison c = switch (fn) {
            case EQ -> VectorOperators.EQ;
            case NE -> VectorOperators.NE;
            case LT -> VectorOperators.LT;
            case LE -> VectorOperators.LE;
            case GT -> VectorOperators.GT;
            case GE -> VectorOperators.GE;
            default -> throw new IllegalArgumentException(fn.opName());
        };
        FloatVector zero = FloatVector.zero(S);
        for (int i = 0; i < n; i += L) st(zero.blend(1f, ld(a, ao, i).compare(c, ld(b, bo, i))), o, oo, i);
    }

    private static void logical(BinaryFn fn, MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        FloatVector zero = FloatVector.zero(S);
        for (int i = 0; i < n; i += L) {
            VectorMask<Float> x = ld(a, ao, i).compare(VectorOperators.NE, 0f);
            VectorMask<Float> y = ld(b, bo, i).compare(VectorOperators.NE, 0f);
            VectorMask<Float> r = switch (fn) {
                case LOGICAL_AND -> x.and(y);
                case LOGICAL_OR -> x.or(y);
                default -> x.eq(y).not();
            };
            st(zero.blend(1f, r), o, oo, i);
        }
    }

    // ---------------------------------------------------------------- clamp, where

    /** min(max(x, lo), hi): NaN stays NaN (and a NaN bound gives NaN); lo > hi gives hi. */
    static void clamp(float lo, float hi, MemorySegment a, long ao, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) st(ld(a, ao, i).max(lo).min(hi), o, oo, i);
    }

    /** c != 0 ? x : y, with the condition staged as 0/1 floats. */
    static void where(MemorySegment c, long co, MemorySegment x, long xo, MemorySegment y, long yo,
                      MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            st(ld(y, yo, i).blend(ld(x, xo, i), ld(c, co, i).compare(VectorOperators.NE, 0f)), o, oo, i);
        }
    }
}
