package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.GraphInterpreter;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** Runs graphs on the eager kernels and compares their results element by element. */
final class GraphRuns {
    private GraphRuns() {}

    /** Random inputs for {@code g}: floats in [-3, 3] with frequent 0, -0, 1, NaN and infinities; small integers; bools. */
    static Tensor[] randomInputs(Graph g, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<TensorMeta> metas = g.inputMetas();
        Tensor[] out = new Tensor[metas.size()];
        for (int i = 0; i < out.length; i++) {
            TensorMeta m = metas.get(i);
            Tensor t = Tensor.empty(m.dtype(), m.shape());
            for (long j = 0; j < t.numel(); j++) {
                if (m.dtype().isFloatingPoint()) Elements.write(m.dtype(), t.storage().segment(), j, randomFloat(r));
                else Elements.writeLong(m.dtype(), t.storage().segment(), j, m.dtype() == DType.BOOL ? r.nextInt(2) : r.nextInt(-5, 6));
            }
            out[i] = t;
        }
        return out;
    }

    private static double randomFloat(SplittableRandom r) {
        return switch (r.nextInt(24)) {
            case 0 -> 0.0;
            case 1, 2 -> -0.0; // often: rewrites must keep the sign of zero
            case 3 -> 1.0;
            case 4 -> Double.NaN;
            case 5 -> r.nextBoolean() ? Double.POSITIVE_INFINITY : Double.NEGATIVE_INFINITY;
            default -> r.nextDouble(-3, 3);
        };
    }

    static Tensor[] run(Graph g, Tensor[] inputs) {
        return new GraphInterpreter(g).run(inputs);
    }

    /**
     * Asserts that {@code actual} has {@code expected}'s dtype, shape and elements: bit for bit
     * (all NaNs alike, -0.0 and +0.0 apart), or within {@code relative} error when positive.
     */
    static void assertSameValues(Tensor expected, Tensor actual, double relative, String context) {
        assertEquals(expected.meta(), actual.meta(), context);
        for (long i = 0; i < expected.numel(); i++) {
            if (expected.dtype() == DType.INT64) {
                long e = Elements.readLong(DType.INT64, expected.storage().segment(), expected.elementOffset(i));
                long a = Elements.readLong(DType.INT64, actual.storage().segment(), actual.elementOffset(i));
                if (e != a) fail("element " + i + " of " + expected.meta() + ": expected " + e + " but got " + a + "\n" + context);
                continue;
            }
            double e = expected.getDouble(i), a = actual.getDouble(i);
            if (Double.compare(e, a) == 0) continue;
            if (relative > 0 && Math.abs(e - a) <= relative * Math.max(Math.abs(e), Math.abs(a))) continue;
            fail("element " + i + " of " + expected.meta() + ": expected " + e + " but got " + a
                    + (relative > 0 ? " (relative tolerance " + relative + ")" : " (bit-exact)") + "\n" + context);
        }
    }
}
