package dev.kiln.npu.kernels.attention;

import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Attention writing its output with the heads behind the queries: the same bits as the usual output permuted. */
class TransposedOutputProperties {
    record Case(int batch, int kvHeads, int group, int queries, int keys, int headDim, int valueDim, boolean causal, boolean mask,
                int partitionSize, DType dtype) {}

    @Provide
    Arbitrary<Case> cases() {
        // One query row under GQA takes the decode path that packs a KV head's query heads into one slice.
        return Combinators.combine(Arbitraries.integers().between(1, 2), Arbitraries.integers().between(1, 3), Arbitraries.integers().between(1, 3),
                        Arbitraries.oneOf(Arbitraries.just(1), Arbitraries.integers().between(2, 40)), Arbitraries.integers().between(1, 70),
                        Arbitraries.of(8, 16, 33), Arbitraries.of(8, 16, 20), Arbitraries.of(true, false))
                .flatAs((b, hkv, g, l, s, e, ev, causal) -> Combinators.combine(Arbitraries.of(true, false), Arbitraries.of(0, 16),
                        Arbitraries.of(DType.FLOAT32, DType.FLOAT16, DType.FLOAT64)).as((mask, partition, dtype) ->
                        new Case(b, hkv, g, l, s, e, ev, causal, mask, partition, dtype)));
    }

    @Property(tries = 120)
    void isTheUsualOutputPermutedBitForBit(@ForAll("cases") Case c) {
        int heads = c.kvHeads() * c.group();
        long seed = c.queries() * 131L + c.keys();
        Tensor q = Tensor.randn(seed, c.batch(), heads, c.queries(), c.headDim()).to(c.dtype());
        Tensor k = Tensor.randn(seed + 1, c.batch(), c.kvHeads(), c.keys(), c.headDim()).to(c.dtype());
        Tensor v = Tensor.randn(seed + 2, c.batch(), c.kvHeads(), c.keys(), c.valueDim()).to(c.dtype());
        Tensor m = Tensor.randn(seed + 3, c.queries(), c.keys()).gt(-1.0);
        Tensor[] in = c.mask() ? new Tensor[] {q, k, v, m} : new Tensor[] {q, k, v};
        Op.Attention usual = new Op.Attention(c.causal(), 0, 0.25, 0, c.kvHeads() != heads, c.mask(), c.partitionSize(), false);
        Op.Attention transposed = new Op.Attention(c.causal(), 0, 0.25, 0, c.kvHeads() != heads, c.mask(), c.partitionSize(), true);
        Tensor want = Dispatch.apply1(usual, in).permute(0, 2, 1, 3).contiguous(), got = Dispatch.apply1(transposed, in);
        assertEquals(want.shape(), got.shape());
        assertTrue(got.isContiguous());
        assertArrayEquals(want.to(DType.FLOAT64).toDoubleArray(), got.to(DType.FLOAT64).toDoubleArray(), c.toString());
    }

    @Test
    void aTransposedOutputNeedsAHeadDimension() {
        Tensor q = Tensor.randn(1, 5, 8);
        var e = assertThrows(KilnShapeException.class, () -> Dispatch.apply1(new Op.Attention(false, 0, 1, 0, false, false, 0, true), q, q, q));
        assertEquals("attention: a transposed output swaps the head and query dimensions, but the output [5,8] has no head dimension", e.getMessage());
    }
}
