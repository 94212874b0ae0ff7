package dev.kiln.samples;

import dev.kiln.samples.DecoderBlock.Config;
import dev.kiln.samples.DecoderBlock.Weights;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class DecoderBlockTest {
    /** Small, with grouped-query attention (4 query heads share 2 KV heads) and a non-default gain. */
    private static final Config SMALL = new Config(16, 4, 2, 4, 24, 10_000, 1e-5);

    @Test
    void matchesADoublePrecisionReferenceOfTheBlock() {
        int seq = 5;
        Weights w = Weights.random(SMALL, 3);
        Weights gains = new Weights(Tensor.rand(11, 16).add(0.5), w.wq(), w.wk(), w.wv(), w.wo(),
                Tensor.rand(12, 16).add(0.5), w.wGate(), w.wUp(), w.wDown());
        Tensor x = Tensor.randn(5, 1, seq, 16);

        float[] actual = new DecoderBlock(SMALL, gains).forward(x, Tensor.arange(seq)).toFloatArray();
        double[] expected = reference(SMALL, gains, x.toDoubleArray(), seq);

        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            if (Math.abs(actual[i] - expected[i]) > 1e-4 + 1e-3 * Math.abs(expected[i])) {
                fail("element " + i + ": got " + actual[i] + ", expected " + expected[i]);
            }
        }
    }

    @Test
    void attentionIsCausal() {
        int seq = 6;
        DecoderBlock block = new DecoderBlock(SMALL, 9);
        Tensor x = Tensor.randn(1, 2, seq, 16);
        Tensor lastChanged = Tensor.cat(1, x.slice(1, 0, seq - 1), Tensor.randn(2, 2, 1, 16));
        Tensor firstChanged = Tensor.cat(1, Tensor.randn(3, 2, 1, 16), x.slice(1, 1, seq));
        Tensor positions = Tensor.arange(seq);

        float[] base = block.forward(x, positions).toFloatArray();
        float[] afterLast = block.forward(lastChanged, positions).toFloatArray();
        float[] afterFirst = block.forward(firstChanged, positions).toFloatArray();

        for (int b = 0; b < 2; b++) {
            for (int s = 0; s < seq; s++) {
                for (int d = 0; d < 16; d++) {
                    int i = (b * seq + s) * 16 + d;
                    if (s < seq - 1) assertEquals(base[i], afterLast[i], 1e-6f, "a later token changed position " + s);
                }
            }
        }
        // The first token reaches every later position through attention.
        boolean lastPositionMoved = false;
        for (int d = 0; d < 16; d++) lastPositionMoved |= Math.abs(base[(seq - 1) * 16 + d] - afterFirst[(seq - 1) * 16 + d]) > 1e-4;
        assertTrue(lastPositionMoved);
    }

    /**
     * The same inputs give the same bits on every call, before and after the JIT compiles
     * the kernels: no kernel may use an operation whose rounding depends on the compiler
     * tier (such as the Vector API's unordered lane reductions or library EXP).
     */
    @Test
    void resultsAreBitIdenticalAcrossCallsAndJitTiers() {
        DecoderBlock block = new DecoderBlock(Config.w4(), 3);
        Tensor x = Tensor.randn(4, 1, 48, 512), positions = Tensor.arange(48);
        float[] first = block.forward(x, positions).toFloatArray();
        for (int call = 1; call < 40; call++) {
            float[] again = block.forward(x, positions).toFloatArray();
            for (int i = 0; i < first.length; i++) {
                if (Float.floatToRawIntBits(first[i]) != Float.floatToRawIntBits(again[i])) {
                    fail("call " + call + " differs from the first at element " + i + ": " + again[i] + " vs " + first[i]);
                }
            }
        }
    }

    @Test
    void randomWeightsAreDeterministicPerSeed() {
        Tensor x = Tensor.randn(4, 1, 3, 16);
        Tensor positions = Tensor.arange(3);
        float[] a = new DecoderBlock(SMALL, 1).forward(x, positions).toFloatArray();
        float[] b = new DecoderBlock(SMALL, 1).forward(x, positions).toFloatArray();
        float[] c = new DecoderBlock(SMALL, 2).forward(x, positions).toFloatArray();
        assertArrayEquals(a, b);
        assertFalse(java.util.Arrays.equals(a, c));
    }

    // ---------------------------------------------------------------- reference, batch 1, in double precision

    private static double[] reference(Config c, Weights w, double[] x, int seq) {
        int d = c.dModel(), hd = c.headDim();
        double[] h = x.clone();
        double[] attn = matmulT(attention(c, w, rmsNorm(x, w.attnNorm().toDoubleArray(), seq, d, c.normEps()), seq),
                w.wo().toDoubleArray(), seq, c.heads() * hd, d);
        for (int i = 0; i < h.length; i++) h[i] += attn[i];
        double[] hn = rmsNorm(h, w.mlpNorm().toDoubleArray(), seq, d, c.normEps());
        double[] gate = matmulT(hn, w.wGate().toDoubleArray(), seq, d, c.hidden());
        double[] up = matmulT(hn, w.wUp().toDoubleArray(), seq, d, c.hidden());
        double[] act = new double[gate.length];
        for (int i = 0; i < act.length; i++) act[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
        double[] down = matmulT(act, w.wDown().toDoubleArray(), seq, c.hidden(), d);
        double[] out = h.clone();
        for (int i = 0; i < out.length; i++) out[i] += down[i];
        return out;
    }

    private static double[] rmsNorm(double[] x, double[] gain, int rows, int d, double eps) {
        double[] out = new double[x.length];
        for (int r = 0; r < rows; r++) {
            double ms = 0;
            for (int j = 0; j < d; j++) ms += x[r * d + j] * x[r * d + j] / d;
            double inv = 1 / Math.sqrt(ms + eps);
            for (int j = 0; j < d; j++) out[r * d + j] = x[r * d + j] * inv * gain[j];
        }
        return out;
    }

    /** {@code x [rows, in] @ w^T} with {@code w [out, in]}. */
    private static double[] matmulT(double[] x, double[] w, int rows, int in, int out) {
        double[] y = new double[rows * out];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int i = 0; i < in; i++) s += x[r * in + i] * w[o * in + i];
                y[r * out + o] = s;
            }
        }
        return y;
    }

    /** Rotary embedding (pairs i, i + hd/2) in place on a [seq, heads * hd] projection. */
    private static void rope(double[] t, int seq, int heads, int hd, double base) {
        for (int p = 0; p < seq; p++) {
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < hd / 2; i++) {
                    double angle = p * Math.pow(base, -2.0 * i / hd);
                    int a = p * heads * hd + h * hd + i, b = a + hd / 2;
                    double va = t[a], vb = t[b];
                    t[a] = va * Math.cos(angle) - vb * Math.sin(angle);
                    t[b] = vb * Math.cos(angle) + va * Math.sin(angle);
                }
            }
        }
    }

    /** Causal grouped-query attention of the normalised input; returns [seq, heads * hd]. */
    private static double[] attention(Config c, Weights w, double[] xn, int seq) {
        int d = c.dModel(), hd = c.headDim(), heads = c.heads(), kvHeads = c.kvHeads();
        double[] q = matmulT(xn, w.wq().toDoubleArray(), seq, d, heads * hd);
        double[] k = matmulT(xn, w.wk().toDoubleArray(), seq, d, kvHeads * hd);
        double[] v = matmulT(xn, w.wv().toDoubleArray(), seq, d, kvHeads * hd);
        rope(q, seq, heads, hd, c.ropeBase());
        rope(k, seq, kvHeads, hd, c.ropeBase());
        double[] out = new double[seq * heads * hd];
        for (int h = 0; h < heads; h++) {
            int kvh = h / (heads / kvHeads);
            for (int i = 0; i < seq; i++) {
                double[] p = new double[i + 1];
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    double s = 0;
                    for (int e = 0; e < hd; e++) s += q[i * heads * hd + h * hd + e] * k[j * kvHeads * hd + kvh * hd + e];
                    p[j] = s / Math.sqrt(hd);
                    max = Math.max(max, p[j]);
                }
                for (int j = 0; j <= i; j++) sum += p[j] = Math.exp(p[j] - max);
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int j = 0; j <= i; j++) o += p[j] / sum * v[j * kvHeads * hd + kvh * hd + e];
                    out[i * heads * hd + h * hd + e] = o;
                }
            }
        }
        return out;
    }
}
