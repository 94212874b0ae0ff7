package dev.kiln.opt.npu;

import dev.kiln.Fn2;
import dev.kiln.Kiln;
import dev.kiln.nn.F;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Compiled linear layers against eager, bit for bit, over calls that bring the same weight
 * back (kept packed), write into it with the write marked, bind another, and run on several
 * threads at once.
 */
class KeptWeightPanelsProperties {

    /** Two linear layers, the second with an epilogue (bias, GELU, residual), as a model's MLP computes them. */
    private static Tensor mlp(Tensor x, Tensor w1, Tensor w2, Tensor bias) {
        Tensor h = F.linear(x, w1, null).relu();
        return F.gelu(F.linear(h, w2, bias)).add(x);
    }

    @Property(tries = 25)
    void compiledLayersMatchEagerAsTheirWeightsComeBackChangeAndAreShared(
            @ForAll @IntRange(min = 17, max = 96) int rows, @ForAll @IntRange(min = 1, max = 600) int in,
            @ForAll @IntRange(min = 2, max = 130) int hidden, @ForAll long seed) throws Exception {
        Tensor w1 = Tensor.randn(seed, hidden, in), w2 = Tensor.randn(seed + 1, in, hidden), bias = Tensor.randn(seed + 2, in);
        Fn2<Tensor> eager = (x, w) -> mlp(x, w, w2, bias);
        Fn2<Tensor> compiled = Kiln.compile(eager);
        Tensor x = Tensor.randn(seed + 3, rows, in);
        for (int call = 0; call < 3; call++) assertArrayEquals(eager.apply(x, w1).toFloatArray(), compiled.apply(x, w1).toFloatArray());

        // New values written into the weights in place and marked, as the KV cache writes are.
        for (Tensor w : new Tensor[] {w1, w2}) {
            float[] fresh = Tensor.randn(seed + 4, w.shape().dims()).toFloatArray();
            MemorySegment.copy(fresh, 0, w.storage().segment(), ValueLayout.JAVA_FLOAT, 0, fresh.length);
            w.storage().markWritten();
        }
        for (int call = 0; call < 2; call++) assertArrayEquals(eager.apply(x, w1).toFloatArray(), compiled.apply(x, w1).toFloatArray());

        // Another weight bound, then the first again; and both on two threads at once.
        Tensor other = Tensor.randn(seed + 5, hidden, in);
        for (Tensor w : new Tensor[] {other, w1, other}) assertArrayEquals(eager.apply(x, w).toFloatArray(), compiled.apply(x, w).toFloatArray());
        float[] wantFirst = eager.apply(x, w1).toFloatArray(), wantOther = eager.apply(x, other).toFloatArray();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<?> a = pool.submit(() -> {
                for (int i = 0; i < 4; i++) assertArrayEquals(wantFirst, compiled.apply(x, w1).toFloatArray());
            });
            Future<?> b = pool.submit(() -> {
                for (int i = 0; i < 4; i++) assertArrayEquals(wantOther, compiled.apply(x, other).toFloatArray());
            });
            a.get();
            b.get();
        } finally {
            pool.shutdown();
        }
    }
}
