package dev.kiln.npu.kernels.gemm;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * A product's bits do not depend on how it is cut: one tile (as while the compilers need the
 * cores and chunks run in order), cut between workers, or read from B packed whole. Sizes
 * around the panel width, so that partial panels and panel tails occur.
 */
class GemmTilingProperties {
    private static final FloatGemm GEMM = new FloatGemm();

    @Property(tries = 60)
    void theProductsBitsDoNotDependOnHowItIsCut(@ForAll @IntRange(min = 1, max = 300) int m, @ForAll @IntRange(min = 1, max = 200) int k,
                                                @ForAll @IntRange(min = 1, max = 260) int n, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Tensor a = Tensor.randn(r.nextLong(), m, k), b = Tensor.randn(r.nextLong(), n, k).transpose(0, 1);
        float[] oneTile = product(a, b, true, false), cut = product(a, b, false, false), packedWhole = product(a, b, false, true);
        String what = m + "x" + k + "x" + n;
        assertArrayEquals(oneTile, cut, what + ": one tile against cut between workers");
        assertArrayEquals(oneTile, packedWhole, what + ": B packed whole");
    }

    private static float[] product(Tensor a, Tensor b, boolean inOrder, boolean packWhole) {
        Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(a.shape().dim(0), b.shape().dim(1)));
        GemmProblem p = GemmProblem.of(a, b, out);
        GEMM.run(p, null, packWhole ? GEMM.packWhole(p.b(), p.k(), p.n()) : null, inOrder);
        return out.toFloatArray();
    }
}
