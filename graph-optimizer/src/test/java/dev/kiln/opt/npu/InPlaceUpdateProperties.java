package dev.kiln.opt.npu;

import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.nn.Serving;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Compiled equals eager for random programs around an in-place cache write: ops and views of
 * the cache before the write, some of them read again after it (a view then sees the update,
 * as in eager), ops on the updated cache after it, with the caches passed as arguments or
 * captured, over several calls that keep writing into the same caches; every program is one graph.
 */
class InPlaceUpdateProperties {

    /** One op on a value: applied before or after the write, to the value at {@code from}. */
    private record Step(String kind, int from, double scalar) {}

    private record Program(int blocks, int blockSize, int heads, int dim, int tokens, List<Step> before, List<Step> after) {
        /** The values before and after the write, flattened and joined, plus the key transformed. */
        Tensor run(Tensor keyCache, Tensor valueCache, Tensor key, Tensor slots) {
            List<Tensor> v = new ArrayList<>(List.of(keyCache));
            for (Step s : before) v.add(apply(s, v.get(s.from() % v.size())));
            Serving.reshapeAndCache(key.mul(2.0), key.tanh(), keyCache, valueCache, slots);
            // The cache object now holds the update: later reads of it see it.
            v.add(keyCache);
            v.add(valueCache);
            for (Step s : after) v.add(apply(s, v.get(s.from() % v.size())));
            Tensor[] flat = new Tensor[v.size()];
            for (int i = 0; i < flat.length; i++) flat[i] = v.get(i).reshape(-1);
            return Tensor.cat(0, flat);
        }
    }

    private static Tensor apply(Step s, Tensor a) {
        return switch (s.kind()) {
            case "tanh" -> a.tanh();
            case "mulScalar" -> a.mul(s.scalar());
            case "addScalar" -> a.add(s.scalar());
            case "sumLast" -> a.sum(-1, true);
            case "transpose" -> a.mT();
            case "addSelfTransposed" -> a.rank() >= 2 && a.size(-1) == a.size(-2) ? a.add(a.mT()) : a.neg();
            default -> throw new IllegalStateException(s.kind());
        };
    }

    private static final String[] KINDS = {"tanh", "mulScalar", "addScalar", "sumLast", "transpose", "addSelfTransposed"};

    private static Program generate(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int dim = 4 * (1 + r.nextInt(3));
        List<Step> before = new ArrayList<>(), after = new ArrayList<>();
        for (int i = r.nextInt(4); i > 0; i--) before.add(new Step(KINDS[r.nextInt(KINDS.length)], r.nextInt(8), r.nextInt(-3, 4) * 0.5));
        for (int i = 1 + r.nextInt(4); i > 0; i--) after.add(new Step(KINDS[r.nextInt(KINDS.length)], r.nextInt(8), r.nextInt(-3, 4) * 0.5));
        return new Program(2 + r.nextInt(3), 2 + r.nextInt(3), 1 + r.nextInt(2), dim, 1 + r.nextInt(3), before, after);
    }

    /** Distinct slots of the cache, or -1 (skipped), for each token. */
    private static Tensor slots(Program p, SplittableRandom r) {
        int capacity = p.blocks() * p.blockSize();
        List<Long> free = new ArrayList<>();
        for (long s = 0; s < capacity; s++) free.add(s);
        long[] out = new long[p.tokens()];
        for (int t = 0; t < out.length; t++) out[t] = r.nextInt(5) == 0 ? -1 : free.remove(r.nextInt(free.size()));
        return Tensor.of(out, out.length);
    }

    @Property(tries = 40)
    void compiledEqualsEagerAroundACacheWrite(@ForAll long seed, @ForAll boolean captured) {
        Program p = generate(seed);
        int[] cacheShape = {p.blocks(), p.blockSize(), p.heads(), p.dim()};
        Tensor eagerKeys = Tensor.randn(seed, cacheShape), eagerValues = Tensor.randn(seed + 1, cacheShape);
        Tensor keys = eagerKeys.copy(), values = eagerValues.copy();
        FnN<Tensor> compiled = captured
                ? Kiln.compileN(a -> p.run(keys, values, (Tensor) a[0], (Tensor) a[1]), NpuBackendTest.NPU.fullGraph(true))
                : Kiln.compileN(a -> p.run((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3]),
                        NpuBackendTest.NPU.fullGraph(true));
        SplittableRandom r = new SplittableRandom(seed ^ 0x5DEECE66DL);
        for (int call = 0; call < 3; call++) {
            Tensor key = Tensor.randn(seed * 7 + call, p.tokens(), p.heads(), p.dim()), slots = slots(p, r);
            Tensor want = p.run(eagerKeys, eagerValues, key, slots);
            Tensor got = captured ? compiled.apply(key, slots) : compiled.apply(keys, values, key, slots);
            String what = p + " call " + call + (captured ? " (captured caches)" : " (caches as arguments)");
            assertArrayEquals(want.toFloatArray(), got.toFloatArray(), 1e-5f, what);
            assertArrayEquals(eagerKeys.toFloatArray(), keys.toFloatArray(), what + ": keys");
            assertArrayEquals(eagerValues.toFloatArray(), values.toFloatArray(), what + ": values");
        }
    }
}
