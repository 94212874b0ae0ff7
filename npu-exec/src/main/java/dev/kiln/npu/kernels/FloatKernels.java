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
 * the loop; any call the JIT does not inline boxes it (an allocation per vector, ten
 * times slower). C2 stops inlining once a compilation unit's node count passes a fixed
 * budget, which about 40 Vector API operations reach, so exp fits in one loop but erf or
 * GELU (100+ operations) do not. Those run as a pipeline of {@link Stage}s over an
 * L1-resident sub-block, each stage its own loop calling one {@link VectorMath} stage;
 * the stages are called through one shared (megamorphic) call site, so the JIT compiles
 * each separately instead of inlining them back into one over-budget unit.
 *
 * <p>sin and cos run scalar {@link Math#sin}/{@link Math#cos} (correctly rounded to
 * float32): they are rare in models (rotary tables are small) and a vector version
 * with full-range argument reduction is not worth its size here.
 */
final class FloatKernels {
    private static final VectorSpecies<Float> S = VectorMath.SPECIES;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    /** Elements per pipeline pass: the temporaries and the block stay in L1. */
    static final int SUB = 512;
    /** Temporaries a pipeline may use, each SUB floats. */
    static final int TEMPS = 3;

    private FloatKernels() {}

    /** One loop of a pipeline: x at (a, ao), output at (o, oo), temporaries t (each from offset 0). */
    @FunctionalInterface
    private interface Stage {
        void run(MemorySegment a, long ao, MemorySegment o, long oo, MemorySegment[] t, int n);
    }

    private static void pipeline(Stage[] stages, MemorySegment a, long ao, MemorySegment o, long oo, int n, MemorySegment[] t) {
        for (int s = 0; s < n; s += SUB) {
            int m = Math.min(SUB, n - s);
            for (Stage stage : stages) stage.run(a, ao + (long) s * Float.BYTES, o, oo + (long) s * Float.BYTES, t, m);
        }
    }

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

    static void unary(UnaryFn fn, MemorySegment a, long ao, MemorySegment o, long oo, int n, MemorySegment[] t) {
        switch (fn) {
            case NEG -> pipeline(NEG, a, ao, o, oo, n, t);
            case ABS -> pipeline(ABS, a, ao, o, oo, n, t);
            case RELU -> pipeline(RELU, a, ao, o, oo, n, t);
            case SQRT -> pipeline(SQRT, a, ao, o, oo, n, t);
            case RSQRT -> pipeline(RSQRT, a, ao, o, oo, n, t);
            case LOGICAL_NOT -> pipeline(LOGICAL_NOT, a, ao, o, oo, n, t);
            case EXP -> pipeline(EXP, a, ao, o, oo, n, t);
            case LOG -> pipeline(LOG, a, ao, o, oo, n, t);
            case TANH -> pipeline(TANH, a, ao, o, oo, n, t);
            case SIGMOID -> pipeline(SIGMOID, a, ao, o, oo, n, t);
            case ERF -> pipeline(ERF, a, ao, o, oo, n, t);
            case GELU -> pipeline(GELU, a, ao, o, oo, n, t);
            case GELU_TANH -> pipeline(GELU_TANH, a, ao, o, oo, n, t);
            case SILU -> pipeline(SILU, a, ao, o, oo, n, t);
            case SOFTPLUS -> pipeline(SOFTPLUS, a, ao, o, oo, n, t);
            case SIN -> { for (int i = 0; i < n; i++) set(o, oo, i, (float) Math.sin(get(a, ao, i))); }
            case COS -> { for (int i = 0; i < n; i++) set(o, oo, i, (float) Math.cos(get(a, ao, i))); }
        }
    }

    // ---------------------------------------------------------------- pipelines

    private static final Stage[] NEG = {(a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(ld(a, ao, i).neg(), o, oo, i); }};
    private static final Stage[] ABS = {(a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(ld(a, ao, i).abs(), o, oo, i); }};
    /** max propagates NaN, and max(-0, 0) = +0 as the reference gives. */
    private static final Stage[] RELU = {(a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(ld(a, ao, i).max(0f), o, oo, i); }};
    private static final Stage[] SQRT = {(a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(ld(a, ao, i).sqrt(), o, oo, i); }};
    /** Two correctly rounded steps: within 1 ulp of the exact 1/sqrt(x). */
    private static final Stage[] RSQRT = {(a, ao, o, oo, t, n) -> {
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (int i = 0; i < n; i += L) st(one.div(ld(a, ao, i).sqrt()), o, oo, i);
    }};
    private static final Stage[] LOGICAL_NOT = {(a, ao, o, oo, t, n) -> {
        for (int i = 0; i < n; i += L) {
            FloatVector v = ld(a, ao, i);
            st(v.broadcast(0f).blend(1f, v.eq(0f)), o, oo, i);
        }
    }};
    private static final Stage[] EXP = {(a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.exp(ld(a, ao, i)), o, oo, i); }};

    private static final Stage[] SIGMOID = {
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.exp(ld(a, ao, i).abs().neg(), 0), t[0], 0, i); },
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.sigmoidFromExp(ld(a, ao, i), ld(t[0], 0, i)), o, oo, i); }};

    private static final Stage[] SILU = {
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) st(VectorMath.exp(ld(a, ao, i).abs().neg(), VectorMath.SUBNORMAL_GUARD), t[0], 0, i);
            },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) {
                    FloatVector x = ld(a, ao, i);
                    st(VectorMath.timesSigmoid(x, ld(t[0], 0, i), x.lt(0f)), o, oo, i);
                }
            }};

    private static final Stage[] TANH = {
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.exp(ld(a, ao, i).abs().mul(2f), 0), t[0], 0, i); },
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.tanhFromExp(ld(a, ao, i), ld(t[0], 0, i)), o, oo, i); }};

    private static final Stage[] LOG = {
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.logReduce(ld(a, ao, i)), t[0], 0, i); },
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.logTail(ld(t[0], 0, i)), t[1], 0, i); },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) st(VectorMath.logCombine(ld(a, ao, i), ld(t[0], 0, i), ld(t[1], 0, i)), o, oo, i);
            }};

    /** t0 = exp(-|x|), t1 = f of log(1 + t0), t2 = its polynomial tail, then the sum. */
    private static final Stage[] SOFTPLUS = {
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.exp(ld(a, ao, i).abs().neg(), 0), t[0], 0, i); },
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.logReduce(ld(t[0], 0, i).add(1f)), t[1], 0, i); },
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.logTail(ld(t[1], 0, i)), t[2], 0, i); },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) {
                    st(VectorMath.softplusCombine(ld(a, ao, i), ld(t[0], 0, i), ld(t[1], 0, i), ld(t[2], 0, i)), o, oo, i);
                }
            }};

    /** t0 = small branch, t1 = Q, then t2 = exponent and t1 = its error, t2 = exp, combine. */
    private static final Stage[] ERF = {
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) {
                    FloatVector z = VectorMath.erfZ(ld(a, ao, i));
                    st(VectorMath.erfSmall(z, z.mul(z)), t[0], 0, i);
                }
            },
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.erfcPolynomial(VectorMath.erfZ(ld(a, ao, i))), t[1], 0, i); },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) {
                    FloatVector z = VectorMath.erfZ(ld(a, ao, i)), q = ld(t[1], 0, i);
                    FloatVector z2 = z.mul(z);
                    st(VectorMath.erfcExponent(q, z2), t[2], 0, i);
                    st(VectorMath.erfcExponentError(q, z2, z.fma(z, z2.neg())), t[1], 0, i);
                }
            },
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.exp(ld(t[2], 0, i), 0), t[2], 0, i); },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) {
                    FloatVector x = ld(a, ao, i);
                    FloatVector erfc = VectorMath.erfcFromParts(VectorMath.erfZ(x), ld(t[2], 0, i), ld(t[1], 0, i));
                    st(VectorMath.erfCombine(x, ld(t[0], 0, i), erfc), o, oo, i);
                }
            }};

    /** As ERF, with GELU's argument and the 2^24 scaling that keeps its tail normal. */
    private static final Stage[] GELU = {
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) {
                    FloatVector x = ld(a, ao, i);
                    st(VectorMath.geluSmallTail(VectorMath.geluZ(x), VectorMath.geluZ2(x)), t[0], 0, i);
                }
            },
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.erfcPolynomial(VectorMath.geluZ(ld(a, ao, i))), t[1], 0, i); },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) {
                    FloatVector x = ld(a, ao, i), q = ld(t[1], 0, i);
                    FloatVector z2 = VectorMath.geluZ2(x);
                    st(VectorMath.erfcExponent(q, z2), t[2], 0, i);
                    st(VectorMath.erfcExponentError(q, z2, VectorMath.geluZ2Low(x)), t[1], 0, i);
                }
            },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) st(VectorMath.exp(ld(t[2], 0, i), VectorMath.SUBNORMAL_GUARD), t[2], 0, i);
            },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) {
                    FloatVector x = ld(a, ao, i);
                    FloatVector erfc = VectorMath.erfcFromParts(VectorMath.geluZ(x), ld(t[2], 0, i), ld(t[1], 0, i));
                    st(VectorMath.geluCombine(x, ld(t[0], 0, i), erfc), o, oo, i);
                }
            }};

    /** t0 = w, t1 = -|v| and t2 = its low part, t1 = exp, combine. */
    private static final Stage[] GELU_TANH = {
            (a, ao, o, oo, t, n) -> { for (int i = 0; i < n; i += L) st(VectorMath.geluTanhW(ld(a, ao, i)), t[0], 0, i); },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) {
                    FloatVector x = ld(a, ao, i), w = ld(t[0], 0, i);
                    st(VectorMath.geluTanhExponent(x, w), t[1], 0, i);
                    st(VectorMath.geluTanhCorrection(x, w), t[2], 0, i);
                }
            },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) st(VectorMath.exp(ld(t[1], 0, i), VectorMath.SUBNORMAL_GUARD), t[1], 0, i);
            },
            (a, ao, o, oo, t, n) -> {
                for (int i = 0; i < n; i += L) st(VectorMath.geluTanhCombine(ld(a, ao, i), ld(t[1], 0, i), ld(t[2], 0, i)), o, oo, i);
            }};

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
