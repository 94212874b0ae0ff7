package dev.kiln.npu.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Horizontal sums in a fixed order. {@code reduceLanes(ADD)} leaves the order of its
 * additions unspecified, and in practice the interpreter and C2 order them differently,
 * so a kernel using it gives different bits before and after its JIT compilation. Kiln
 * promises bit-identical results for identical inputs (the kernel cache relies on it),
 * so every float sum across lanes goes through here: in lane order ({@link #sum}), as a
 * tree ({@link #treeSum}), or for a row of vectors at once ({@link #transposedSums}), each
 * with a scalar twin over an array of lanes for kernels' scalar twins.
 */
public final class Lanes {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = S.length();

    private Lanes() {}

    /** The lanes of {@code v} set in {@code m}, added in lane order. */
    public static float sum(FloatVector v, VectorMask<Float> m) {
        return sum(v.blend(0f, m.not()));
    }

    /** The lanes of {@code v} added in lane order. */
    public static float sum(FloatVector v) {
        float[] lanes = v.toArray();
        float s = 0f;
        for (float x : lanes) s += x;
        return s;
    }

    /** Lane i and lane i ^ span, for each span of the trees in {@link #treeSum} and {@link #transposedSums}. */
    private static final VectorShuffle<Float> SWAP_8 = swap(8), SWAP_4 = swap(4), SWAP_2 = swap(2), SWAP_1 = swap(1);
    /** Lanes whose index has bit {@code span} set, for each span of the tree in {@link #transposedSums}. */
    private static final VectorMask<Float> HIGH_8 = high(8), HIGH_4 = high(4), HIGH_2 = high(2), HIGH_1 = high(1);

    private static VectorShuffle<Float> swap(int span) {
        return VectorShuffle.fromOp(S, i -> span < LANES ? i ^ span : i);
    }

    private static VectorMask<Float> high(int span) {
        boolean[] bits = new boolean[LANES];
        for (int i = 0; i < LANES; i++) bits[i] = (i & span) != 0;
        return VectorMask.fromArray(S, bits, 0);
    }

    /**
     * The lanes of {@code v} added as a tree: halves, then quarters, and so on (four
     * permutes and adds for 16 lanes, against fifteen dependent scalar additions in lane
     * order). Up to 16 lanes, the widest float species on x86 and most SVE hardware; wider
     * vectors are added in lane order.
     */
    public static float treeSum(FloatVector v) {
        if (LANES > 16) return sum(v);
        if (LANES > 8) v = v.add(v.rearrange(SWAP_8));
        if (LANES > 4) v = v.add(v.rearrange(SWAP_4));
        if (LANES > 2) v = v.add(v.rearrange(SWAP_2));
        if (LANES > 1) v = v.add(v.rearrange(SWAP_1));
        return v.lane(0);
    }

    /** {@link #treeSum}'s scalar twin over {@code lanes[0, LANES)}, which it overwrites. */
    public static float treeSumOf(float[] lanes) {
        if (LANES > 16) return inLaneOrder(lanes);
        for (int span = LANES / 2; span > 0; span /= 2) {
            for (int i = 0; i < span; i++) lanes[i] += lanes[i + span];
        }
        return lanes[0];
    }

    /**
     * Lane k of the result is the sum of the lanes of vector k of {@code p[at ..]}
     * ({@code LANES} vectors one after another, overwritten), added as a fixed tree: pairs of
     * vectors combine into one holding both halves' sums (a's in the lanes without bit
     * {@code span}, b's in those with it), for span 1, 2, 4 and 8. Four operations per pair,
     * so 16 sums cost 60 operations, against 16 lane sums of 8 to 30 each.
     */
    public static FloatVector transposedSums(float[] p, int at) {
        if (LANES > 16) {
            float[] sums = new float[LANES];
            for (int k = 0; k < LANES; k++) sums[k] = sum(FloatVector.fromArray(S, p, at + k * LANES));
            return FloatVector.fromArray(S, sums, 0);
        }
        int count = LANES;
        if (LANES > 1) count = combine(p, at, count, HIGH_1, SWAP_1);
        if (LANES > 2) count = combine(p, at, count, HIGH_2, SWAP_2);
        if (LANES > 4) count = combine(p, at, count, HIGH_4, SWAP_4);
        if (LANES > 8) combine(p, at, count, HIGH_8, SWAP_8);
        return FloatVector.fromArray(S, p, at);
    }

    /** One level of {@link #transposedSums}: {@code count} vectors at {@code p[at ..]} into half as many, in place. */
    private static int combine(float[] p, int at, int count, VectorMask<Float> high, VectorShuffle<Float> swap) {
        for (int i = 0; i < count / 2; i++) {
            FloatVector a = FloatVector.fromArray(S, p, at + 2 * i * LANES), b = FloatVector.fromArray(S, p, at + (2 * i + 1) * LANES);
            a.blend(b, high).add(b.blend(a, high).rearrange(swap)).intoArray(p, at + i * LANES);
        }
        return count / 2;
    }

    /**
     * One vector's sum as {@link #transposedSums} forms it, over {@code lanes[0, LANES)} (which
     * it overwrites): adjacent pairs, then pairs of pairs. Its scalar twin.
     */
    public static float transposedSumOf(float[] lanes) {
        if (LANES > 16) return inLaneOrder(lanes);
        for (int span = 1; span < LANES; span *= 2) {
            for (int i = 0; i + span < LANES; i += 2 * span) lanes[i] += lanes[i + span];
        }
        return lanes[0];
    }

    private static float inLaneOrder(float[] lanes) {
        float s = 0f;
        for (int l = 0; l < LANES; l++) s += lanes[l];
        return s;
    }
}
