package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every candidate identity ({@code x op c} with c a signed zero, one, or another value,
 * as a host scalar or a Full of any dtype and of x's shape or a broadcasting one) either
 * stays or is rewritten to x, and the result is bit-for-bit the same on inputs full of
 * signed zeros, NaNs and infinities.
 */
class AlgebraicSimplificationProperties {
    private static final DType[] DTYPES = {DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.BFLOAT16, DType.INT32,
            DType.INT64, DType.BOOL};
    private static final BinaryFn[] FNS = {BinaryFn.ADD, BinaryFn.SUB, BinaryFn.MUL, BinaryFn.DIV, BinaryFn.POW,
            BinaryFn.MAXIMUM};
    private static final double[] OTHER_CONSTANTS = {0.0, -0.0, 1.0, 2.0, -1.0, 0.5};

    @Property(tries = 500)
    void identitiesKeepEveryBit(@ForAll long seed) {
        Graph g = candidate(seed);
        if (g == null) return;
        Graph simplified = new AlgebraicSimplification().run(g).graph();
        for (int draw = 0; draw < 3; draw++) {
            Tensor[] in = GraphRuns.randomInputs(g, seed * 7 + draw);
            GraphRuns.assertSameValues(GraphRuns.run(g, in)[0], GraphRuns.run(simplified, in)[0], 0,
                    g.toTable() + "simplified:\n" + simplified.toTable());
        }
    }

    /** The candidates are only a test of the rules if many of them are rewritten. */
    @Example
    void manyCandidatesAreRewritten() {
        int rewritten = 0, valid = 0;
        for (long seed = 0; seed < 500; seed++) {
            Graph g = candidate(seed);
            if (g == null) continue;
            valid++;
            if (!new AlgebraicSimplification().run(g).details().isEmpty()) rewritten++;
        }
        assertTrue(valid >= 300 && rewritten >= valid / 4, rewritten + " of " + valid + " rewritten");
    }

    /** {@code x op c} or {@code c op x}, or null when the op rejects the operands (bool subtraction, say). */
    private static Graph candidate(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        GraphBuilder b = new GraphBuilder();
        DType t = DTYPES[r.nextInt(DTYPES.length)];
        Shape shape = r.nextInt(4) == 0 ? Shape.of(3) : Shape.of(2, 3);
        ValueRef x = b.input(new TensorMeta(t, shape));
        BinaryFn fn = FNS[r.nextInt(FNS.length)];
        boolean additive = fn == BinaryFn.ADD || fn == BinaryFn.SUB;
        // Mostly the candidate identity of fn (either zero for + and -), sometimes anything.
        double c = r.nextInt(5) == 0 ? OTHER_CONSTANTS[r.nextInt(OTHER_CONSTANTS.length)]
                : additive ? (r.nextBoolean() ? 0.0 : -0.0) : 1.0;
        boolean first = r.nextInt(3) == 0;
        try {
            if (r.nextBoolean()) {
                boolean integral = c == Math.rint(c) && r.nextBoolean();
                Op.BinaryScalar op = new Op.BinaryScalar(fn, c, integral, first);
                if (!op.computeType(t).isFloatingPoint() && fn == BinaryFn.POW && (first || c < 0)) return null;
                return b.build(b.apply(op, List.of(x)));
            }
            DType ct = r.nextBoolean() ? t : DTYPES[r.nextInt(DTYPES.length)];
            Shape cs = switch (r.nextInt(5)) {
                case 0 -> Shape.of(4, 2, 3); // broadcasts x to a larger shape
                case 1 -> Shape.of(1);
                case 2 -> Shape.SCALAR;
                default -> shape;
            };
            ValueRef k = b.apply(new Op.Full(cs, ct, c), List.of()).get(0);
            Op.Binary op = new Op.Binary(fn);
            if (!op.computeType(t, ct).isFloatingPoint() && fn == BinaryFn.POW && (first || c < 0)) return null;
            return b.build(b.apply(op, first ? List.of(k, x) : List.of(x, k)));
        } catch (KilnException e) {
            return null;
        }
    }
}
