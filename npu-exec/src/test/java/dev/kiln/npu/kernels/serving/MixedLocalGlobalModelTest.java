package dev.kiln.npu.kernels.serving;

import dev.kiln.nn.F;
import dev.kiln.nn.Serving;
import dev.kiln.nn.SlidingWindowCache;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A Gemma 3-style stack, five sliding-window layers to one global layer, served
 * incrementally with both cache kinds (a ring per local layer, a paged cache per global
 * one) through prefill chunks and decode steps, against recomputing the whole sequence
 * with masked {@code scaled_dot_product_attention} at every step.
 */
class MixedLocalGlobalModelTest {
    private static final int LAYERS = 6, MODEL = 32, HEADS = 4, KV_HEADS = 2, HEAD = 8, WINDOW = 5, MAX_CHUNK = 4;
    private static final int BLOCK = 4, BLOCKS = 16;
    private static final double SCALE = 1 / Math.sqrt(HEAD);

    private record Layer(boolean global, Tensor norm, Tensor wq, Tensor wk, Tensor wv, Tensor wo) {
        static Layer random(int index) {
            long s = 100L * index;
            return new Layer(index % 6 == 5, Tensor.rand(s, MODEL).add(0.5), Tensor.randn(s + 1, HEADS * HEAD, MODEL).mul(0.2),
                    Tensor.randn(s + 2, KV_HEADS * HEAD, MODEL).mul(0.2), Tensor.randn(s + 3, KV_HEADS * HEAD, MODEL).mul(0.2),
                    Tensor.randn(s + 4, MODEL, HEADS * HEAD).mul(0.2));
        }
    }

    private final List<Layer> layers = new ArrayList<>();
    {
        for (int l = 0; l < LAYERS; l++) layers.add(Layer.random(l));
    }

    /** The whole sequence at once: each layer's attention masked by its window (local) or causally (global). */
    private Tensor recompute(Tensor tokens) {
        int t = tokens.size(0);
        Tensor x = tokens;
        for (Layer layer : layers) {
            Tensor h = F.rmsNorm(x, new int[] {MODEL}, layer.norm(), 1e-6);
            Tensor q = F.linear(h, layer.wq(), null).reshape(t, HEADS, HEAD).transpose(0, 1);
            Tensor k = F.linear(h, layer.wk(), null).reshape(t, KV_HEADS, HEAD).transpose(0, 1);
            Tensor v = F.linear(h, layer.wv(), null).reshape(t, KV_HEADS, HEAD).transpose(0, 1);
            boolean[] keep = new boolean[t * t];
            for (int i = 0; i < t; i++) for (int j = 0; j < t; j++) keep[i * t + j] = j <= i && (layer.global() || j > i - WINDOW);
            Tensor a = F.scaledDotProductAttention(q, k, v, Tensor.of(keep, t, t), false, SCALE, true);
            x = x.add(F.linear(a.transpose(0, 1).reshape(t, HEADS * HEAD), layer.wo(), null));
        }
        return x;
    }

    /** The serving path: rings for the local layers, paged caches for the global ones. */
    private final class Engine {
        final SlidingWindowCache[] rings = new SlidingWindowCache[LAYERS];
        final Tensor[] keyPages = new Tensor[LAYERS], valuePages = new Tensor[LAYERS];
        /** A scattered block table, as an allocator would hand blocks out. */
        final int[] blockTable = {7, 2, 11, 0, 5, 14, 9, 3, 12, 1, 15, 6, 10, 4, 13, 8};
        long length;

        Engine() {
            for (int l = 0; l < LAYERS; l++) {
                if (layers.get(l).global()) {
                    keyPages[l] = Tensor.full(Double.NaN, BLOCKS, BLOCK, KV_HEADS, HEAD);
                    valuePages[l] = Tensor.full(Double.NaN, BLOCKS, BLOCK, KV_HEADS, HEAD);
                } else {
                    rings[l] = new SlidingWindowCache(1, WINDOW, MAX_CHUNK, KV_HEADS, HEAD, DType.FLOAT32);
                }
            }
        }

        /** Runs {@code c} new tokens [c, MODEL] through every layer; returns their outputs. */
        Tensor step(Tensor tokens) {
            int c = tokens.size(0);
            long[] slots = new long[c];
            for (int i = 0; i < c; i++) {
                long p = length + i;
                slots[i] = (long) blockTable[(int) (p / BLOCK)] * BLOCK + p % BLOCK;
            }
            Tensor x = tokens;
            for (int l = 0; l < LAYERS; l++) {
                Layer layer = layers.get(l);
                Tensor h = F.rmsNorm(x, new int[] {MODEL}, layer.norm(), 1e-6);
                Tensor q = F.linear(h, layer.wq(), null).reshape(c, HEADS, HEAD);
                Tensor k = F.linear(h, layer.wk(), null).reshape(c, KV_HEADS, HEAD);
                Tensor v = F.linear(h, layer.wv(), null).reshape(c, KV_HEADS, HEAD);
                Tensor a;
                if (layer.global()) {
                    Serving.reshapeAndCache(k, v, keyPages[l], valuePages[l], Tensor.of(slots, c));
                    a = Serving.pagedAttention(q, keyPages[l], valuePages[l], Tensor.of(blockTable, 1, BLOCKS),
                            Tensor.of(new int[] {(int) length + c}, 1), Tensor.of(new int[] {0, c}, 2), SCALE, true, 0, 0);
                } else {
                    a = rings[l].prefill(0, q, k, v, SCALE, 0);
                }
                x = x.add(F.linear(a.reshape(c, HEADS * HEAD), layer.wo(), null));
            }
            length += c;
            return x;
        }
    }

    @Test
    void fiveLocalLayersToOneGlobalServedIncrementallyMatchFullRecompute() {
        int[] chunks = {3, 4, 1, 2, 4, 1, 1, 1, 3, 1, 1, 1, 1, 4, 1, 1, 1, 1, 1, 1};
        int total = java.util.Arrays.stream(chunks).sum();
        Tensor all = Tensor.randn(77, total, MODEL);
        Tensor expected = recompute(all);
        Engine engine = new Engine();
        int at = 0;
        for (int c : chunks) {
            Tensor got = engine.step(all.slice(0, at, at + c));
            float[] e = expected.slice(0, at, at + c).toFloatArray(), g = got.toFloatArray();
            for (int i = 0; i < e.length; i++) assertEquals(e[i], g[i], 1e-4 * (1 + Math.abs(e[i])), "tokens " + at + ".." + (at + c) + ", element " + i);
            at += c;
        }
        assertEquals(total, engine.length);
        assertEquals(WINDOW + MAX_CHUNK - 1, engine.rings[0].ringSize(), "local layers keep " + (WINDOW + MAX_CHUNK - 1) + " slots however long the stream");
    }
}
