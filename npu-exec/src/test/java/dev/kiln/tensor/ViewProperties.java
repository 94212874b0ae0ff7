package dev.kiln.tensor;

import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * View ops and the shape API against index arithmetic written here: a {@link Ref}
 * array (shape and row-major doubles) that computes each view's elements from its
 * multi-index. Views must share storage with their input; only a reshape the layout
 * cannot express copies (and that copy is the only kernel these tests use).
 */
class ViewProperties {

    private static final DType[] TYPES = {DType.FLOAT64, DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16, DType.INT32, DType.INT64};

    // ================================================================ one op at a time

    @Property(tries = 100)
    void permuteMovesDimensions(@ForAll("inputs") Input in, @ForAll long seed) {
        int[] p = randomPermutation(in.ref.rank(), new SplittableRandom(seed));
        assertView(in, in.ref.permute(p), in.tensor.permute(p));
    }

    @Property(tries = 100)
    void transposeSwapsTwoDimensionsAndMtTheLastTwo(@ForAll("inputs") Input in, @ForAll long seed) {
        int rank = in.ref.rank();
        SplittableRandom r = new SplittableRandom(seed);
        int a = rank == 0 ? 0 : r.nextInt(rank), b = rank == 0 ? 0 : r.nextInt(rank);
        int[] p = identity(rank);
        if (rank > 0) {
            p[a] = b;
            p[b] = a;
        }
        // Negative dimension indices count from the end.
        assertView(in, in.ref.permute(p), in.tensor.transpose(a - (r.nextBoolean() ? rank : 0), b));
        if (rank < 2) {
            // PyTorch raises for mT below 2-D rather than returning the input.
            assertThrows(KilnShapeException.class, in.tensor::mT);
            return;
        }
        int[] q = identity(rank);
        q[rank - 2] = rank - 1;
        q[rank - 1] = rank - 2;
        assertView(in, in.ref.permute(q), in.tensor.mT());
    }

    @Property(tries = 200)
    void sliceFollowsPythonsRulesForStepsAndBounds(@ForAll("inputs") Input in, @ForAll long seed) {
        if (in.ref.rank() == 0) return;
        SplittableRandom r = new SplittableRandom(seed);
        int dim = r.nextInt(in.ref.rank());
        int n = in.ref.shape[dim];
        // Bounds well outside [-n, n] and steps of either sign, as Python allows.
        long start = r.nextInt(-n - 3, n + 4), end = r.nextInt(-n - 3, n + 4);
        long step = r.nextBoolean() ? r.nextInt(1, 4) : -r.nextInt(1, 4);
        int[] picked = pythonSlice(n, start, end, step);
        Tensor t = in.tensor.slice(dim - (r.nextBoolean() ? in.ref.rank() : 0), start, end, step);
        assertView(in, in.ref.pick(dim, picked), t);
    }

    @Test
    void sliceExamplesAgreeWithPython() {
        // Expected lists from Python's list(range(6))[start:end:step].
        Tensor t = Tensor.of(new int[] {0, 1, 2, 3, 4, 5}, 6);
        assertArrayEquals(new double[] {1, 3}, TestTensors.values(t.slice(0, 1, 5, 2)));
        assertArrayEquals(new double[] {5, 4, 3, 2, 1, 0}, TestTensors.values(t.slice(0, -1, -100, -1)));
        assertArrayEquals(new double[] {5, 2}, TestTensors.values(t.slice(0, 100, 0, -3)));
        assertArrayEquals(new double[] {}, TestTensors.values(t.slice(0, 4, 2, 1)));
        assertArrayEquals(new double[] {4, 3}, TestTensors.values(t.slice(0, -2, 2, -1)));
        assertArrayEquals(new double[] {0, 1, 2, 3, 4, 5}, TestTensors.values(t.slice(0, -100, 100)));
        assertArrayEquals(new double[] {}, TestTensors.values(t.slice(0, -100, -100, -1)));
    }

    @Property(tries = 100)
    void selectRemovesTheDimensionAtAnIndex(@ForAll("inputs") Input in, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int rank = in.ref.rank();
        if (rank == 0) return;
        int dim = r.nextInt(rank);
        int n = in.ref.shape[dim];
        if (n == 0) return;
        int index = r.nextInt(n);
        Ref expected = in.ref.pick(dim, new int[] {index}).dropDim(dim);
        assertView(in, expected, in.tensor.select(dim, index));
        assertView(in, expected, in.tensor.select(dim - rank, index - n));
    }

    @Property(tries = 100)
    void expandAndBroadcastToRepeatSizeOneAndAddLeadingDimensions(@ForAll("inputs") Input in, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int rank = in.ref.rank();
        int lead = r.nextInt(3);
        if (rank + lead > Shape.MAX_RANK) return;
        int[] target = new int[lead + rank];
        int[] request = new int[lead + rank];
        for (int i = 0; i < target.length; i++) {
            int own = i < lead ? 1 : in.ref.shape[i - lead];
            boolean keep = i >= lead && r.nextInt(3) == 0; // requested as -1
            target[i] = own == 1 && !keep ? r.nextInt(0, 4) : own;
            request[i] = keep ? -1 : target[i];
        }
        Ref expected = in.ref.expand(target);
        assertView(in, expected, in.tensor.expand(request));
        assertView(in, expected, in.tensor.broadcastTo(Shape.of(target)));
    }

    @Property(tries = 100)
    void squeezeAndUnsqueezeAreViewsEvenOfStridedTensors(@ForAll("inputs") Input in, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int rank = in.ref.rank();
        int[] squeezed = Arrays.stream(in.ref.shape).filter(d -> d != 1).toArray();
        assertView(in, in.ref.reshape(squeezed), in.tensor.squeeze());
        if (rank > 0) {
            int d = r.nextInt(rank);
            Ref expected = in.ref.shape[d] == 1 ? in.ref.dropDim(d) : in.ref;
            assertView(in, expected, in.tensor.squeeze(d - (r.nextBoolean() ? rank : 0)));
        }
        if (rank < Shape.MAX_RANK) {
            int d = r.nextInt(rank + 1);
            int[] shape = new int[rank + 1];
            for (int i = 0, j = 0; i <= rank; i++) shape[i] = i == d ? 1 : in.ref.shape[j++];
            assertView(in, in.ref.reshape(shape), in.tensor.unsqueeze(d - (r.nextBoolean() ? rank + 1 : 0)));
        }
    }

    @Property(tries = 100)
    void diagonalAppendsTheDiagonalOfTwoDimensions(@ForAll("inputs") Input in, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int rank = in.ref.rank();
        if (rank < 2) return;
        int a = r.nextInt(rank), b = (a + 1 + r.nextInt(rank - 1)) % rank;
        Ref expected = in.ref.diagonal(a, b);
        assertView(in, expected, in.tensor.diagonal(a, b));
        assertView(in, expected, in.tensor.diagonal(b - rank, a));
    }

    @Property(tries = 100)
    void splitBySizeAndBySizesGivesConsecutiveSlices(@ForAll("inputs") Input in, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int rank = in.ref.rank();
        if (rank == 0) return;
        int dim = r.nextInt(rank);
        int n = in.ref.shape[dim];
        int size = r.nextInt(1, 5);
        Tensor[] pieces = in.tensor.split(size, dim);
        assertEquals(Math.max(1, (n + size - 1) / size), pieces.length);
        for (int i = 0; i < pieces.length; i++) {
            assertView(in, in.ref.pick(dim, range(i * size, Math.min(n, (i + 1) * size))), pieces[i]);
        }
        // Sizes between sorted random cut points: they add up to n and may be 0.
        int[] cuts = new int[r.nextInt(0, 4)];
        for (int i = 0; i < cuts.length; i++) cuts[i] = r.nextInt(n + 1);
        Arrays.sort(cuts);
        int[] sz = new int[cuts.length + 1];
        for (int i = 0, prev = 0; i <= cuts.length; i++) {
            int next = i < cuts.length ? cuts[i] : n;
            sz[i] = next - prev;
            prev = next;
        }
        Tensor[] parts = in.tensor.split(sz, dim - rank);
        assertEquals(sz.length, parts.length);
        for (int i = 0, at = 0; i < sz.length; at += sz[i], i++) {
            assertView(in, in.ref.pick(dim, range(at, at + sz[i])), parts[i]);
        }
    }

    @Property(tries = 100)
    void reshapeOfAContiguousTensorIsAViewWithMinusOneInferred(@ForAll("shapes") int[] shape, @ForAll("types") DType dtype,
                                                              @ForAll long seed) {
        Input in = Input.of(shape, dtype, Presentation.CONTIGUOUS);
        SplittableRandom r = new SplittableRandom(seed);
        int[] target = randomFactoring(in.ref.shape, r);
        int[] request = target.clone();
        if (target.length > 0 && in.ref.numel() > 0 && r.nextBoolean()) request[r.nextInt(target.length)] = -1;
        assertView(in, in.ref.reshape(target), in.tensor.reshape(request));
    }

    @Property(tries = 100)
    void flattenJoinsARangeOfDimensions(@ForAll("inputs") Input in, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int rank = in.ref.rank();
        int s = rank == 0 ? 0 : r.nextInt(rank), e = rank == 0 ? 0 : r.nextInt(s, rank);
        int[] d = in.ref.shape;
        int[] flat;
        if (rank == 0) {
            flat = new int[] {1};
        } else {
            flat = new int[rank - (e - s)];
            for (int i = 0, j = 0; i < rank; i++) {
                if (i <= s || i > e) flat[j++] = i == s ? product(d, s, e + 1) : d[i];
            }
        }
        assertValues(in.ref.reshape(flat), in.tensor.flatten(s, e));
        assertValues(in.ref.reshape(new int[] {in.ref.numel()}), in.tensor.flatten());
    }

    /** Reshapes of strided views: a view where the strides allow it, else a copy (the Contiguous kernel). */
    @Property(tries = 100)
    void reshapeOfAnyLayoutGivesTheRowMajorElements(@ForAll("inputs") Input in, @ForAll long seed) {
        int[] target = randomFactoring(in.ref.shape, new SplittableRandom(seed));
        assertValues(in.ref.reshape(target), in.tensor.reshape(target));
    }

    @Test
    void reshapeCopiesOnlyWhenTheStridesCannotExpressTheNewShape() {
        Tensor base = TestTensors.tensor(new double[] {0, 1, 2, 3, 4, 5}, DType.FLOAT32, 2, 3);
        Tensor transposed = base.mT();
        assertSame(base.storage(), transposed.reshape(3, 1, 2).storage());
        Tensor flat = transposed.reshape(6);
        assertNotSame(base.storage(), flat.storage());
        assertArrayEquals(new double[] {0, 3, 1, 4, 2, 5}, TestTensors.values(flat));

        Tensor rows = TestTensors.tensor(new double[12], DType.FLOAT32, 4, 3).slice(0, 1, 3);
        assertSame(rows.storage(), rows.reshape(6).storage());
        Tensor everyOther = TestTensors.tensor(new double[12], DType.FLOAT32, 3, 4).slice(1, 0, 4, 2);
        assertSame(everyOther.storage(), everyOther.reshape(6).storage()); // one uniform stride of 2
        Tensor columns = TestTensors.tensor(new double[12], DType.FLOAT32, 3, 4).slice(1, 0, 3);
        assertNotSame(columns.storage(), columns.reshape(9).storage());

        Tensor expanded = Tensor.of(new float[] {1, 2, 3}, 1, 3).expand(4, 3);
        Tensor split = expanded.reshape(2, 2, 3);
        assertSame(expanded.storage(), split.storage());
        assertArrayEquals(new long[] {0, 0, 1}, split.strides());
        assertNotSame(expanded.storage(), expanded.reshape(12).storage());
        assertArrayEquals(new double[] {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}, TestTensors.values(expanded.reshape(12)));
    }

    // ================================================================ chains of views

    /** Random sequences of views (never copying ones) agree with the same sequence on the reference. */
    @Property(tries = 200)
    void chainsOfViewsComposeLikeIndexArithmetic(@ForAll("inputs") Input in, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Ref ref = in.ref;
        Tensor t = in.tensor;
        StringBuilder trail = new StringBuilder(in.toString());
        for (int step = 0; step < 4; step++) {
            ViewStep v = randomView(ref, r);
            if (v == null) continue;
            trail.append(" -> ").append(v.name);
            ref = v.onRef.apply(ref);
            t = v.onTensor.apply(t);
            assertSame(in.tensor.storage(), t.storage(), trail.toString());
            assertValues(ref, t, trail.toString());
        }
    }

    private record ViewStep(String name, Function<Ref, Ref> onRef, Function<Tensor, Tensor> onTensor) {}

    private static ViewStep randomView(Ref ref, SplittableRandom r) {
        int rank = ref.rank();
        int[] shape = ref.shape;
        switch (r.nextInt(8)) {
            case 0 -> {
                int[] p = randomPermutation(rank, r);
                return new ViewStep("permute" + Arrays.toString(p), x -> x.permute(p), x -> x.permute(p));
            }
            case 1 -> {
                if (rank == 0) return null;
                int dim = r.nextInt(rank), n = shape[dim];
                long start = r.nextInt(-n - 2, n + 3), end = r.nextInt(-n - 2, n + 3), step = r.nextBoolean() ? r.nextInt(1, 3) : -r.nextInt(1, 3);
                return new ViewStep("slice(" + dim + "," + start + "," + end + "," + step + ")",
                        x -> x.pick(dim, pythonSlice(n, start, end, step)), x -> x.slice(dim, start, end, step));
            }
            case 2 -> {
                if (rank == 0 || shape[0] == 0) return null;
                int i = r.nextInt(shape[0]);
                return new ViewStep("select(0," + i + ")", x -> x.pick(0, new int[] {i}).dropDim(0), x -> x.select(0, i));
            }
            case 3 -> {
                if (rank >= Shape.MAX_RANK - 1) return null;
                int[] target = new int[rank + 1];
                target[0] = r.nextInt(1, 3);
                for (int i = 0; i < rank; i++) target[i + 1] = shape[i] == 1 ? r.nextInt(1, 4) : shape[i];
                return new ViewStep("expand" + Arrays.toString(target), x -> x.expand(target), x -> x.expand(target));
            }
            case 4 -> {
                if (rank < 2) return null;
                int a = r.nextInt(rank), b = (a + 1 + r.nextInt(rank - 1)) % rank;
                return new ViewStep("diagonal(" + a + "," + b + ")", x -> x.diagonal(a, b), x -> x.diagonal(a, b));
            }
            case 5 -> {
                if (rank >= Shape.MAX_RANK - 1) return null;
                int d = r.nextInt(rank + 1);
                int[] s = new int[rank + 1];
                for (int i = 0, j = 0; i <= rank; i++) s[i] = i == d ? 1 : shape[j++];
                return new ViewStep("unsqueeze(" + d + ")", x -> x.reshape(s), x -> x.unsqueeze(d));
            }
            case 6 -> {
                int[] s = Arrays.stream(shape).filter(d -> d != 1).toArray();
                return new ViewStep("squeeze()", x -> x.reshape(s), Tensor::squeeze);
            }
            default -> {
                if (rank == 0) return null;
                int dim = r.nextInt(rank), size = r.nextInt(1, 4);
                int pieces = Math.max(1, (shape[dim] + size - 1) / size), which = r.nextInt(pieces);
                int from = which * size, to = Math.min(shape[dim], from + size);
                return new ViewStep("split(" + size + "," + dim + ")[" + which + "]",
                        x -> x.pick(dim, range(Math.min(from, to), to)), x -> x.split(size, dim)[which]);
            }
        }
    }

    // ================================================================ errors

    @Test
    void reshapeErrors() {
        Tensor t = zeros(2, 3);
        assertMessage("reshape: shape [4,4] is invalid for input of shape [2,3] (6 elements)", () -> t.reshape(4, 4));
        assertMessage("reshape: shape [-1, 4] is invalid for input of shape [2,3] (6 elements)", () -> t.reshape(-1, 4));
        assertMessage("reshape: only one dimension can be -1, got [-1, -1]", () -> t.reshape(-1, -1));
        assertMessage("reshape: invalid size -2 at dimension 1 in [3, -2]", () -> t.reshape(3, -2));
        assertMessage("reshape: shape [-1, 0] is invalid for input of shape [0,3] (0 elements)",
                () -> zeros(0, 3).reshape(-1, 0));
        assertMessage("reshape: shape [7] is invalid for input of shape [2,3] (6 elements)",
                () -> new Op.Reshape(Shape.of(7)).infer(List.of(meta(2, 3))));
    }

    @Test
    void permuteAndTransposeErrors() {
        Tensor t = zeros(2, 3);
        assertMessage("permute: [0, 0] is not a permutation of the dimensions of [2,3]", () -> t.permute(0, 0));
        assertMessage("permute: [0, 2] is not a permutation of the dimensions of [2,3]", () -> t.permute(0, 2));
        assertMessage("permute: [0, -3] is not a permutation of the dimensions of [2,3]", () -> t.permute(0, -3));
        assertMessage("permute: [0] has 1 dimensions but the input shape [2,3] has 2", () -> t.permute(0));
        assertMessage("transpose: dimension 2 is out of range for shape [2,3] (expected in [-2, 1])", () -> t.transpose(0, 2));
    }

    @Test
    void expandErrors() {
        Tensor t = zeros(2, 1);
        assertMessage("expand: shapes [2,1] and [3,4] do not broadcast: dimension -2 is 2 vs 3", () -> t.expand(3, 4));
        assertMessage("expand: shape [2,1] cannot be expanded to [4]", () -> t.expand(4));
        assertMessage("expand: shape [2,1] cannot be expanded to [1,1]", () -> t.broadcastTo(Shape.of(1, 1)));
        assertMessage("expand: shapes [2,1] and [0,1] do not broadcast: dimension -2 is 2 vs 0", () -> t.expand(0, 1));
        assertMessage("expand: -1 is not allowed for the new leading dimension 0", () -> t.expand(-1, 2, 5));
    }

    @Test
    void sliceAndSelectErrors() {
        Tensor t = zeros(2, 3);
        assertMessage("slice: step cannot be zero", () -> t.slice(1, 0, 3, 0));
        assertMessage("slice: dimension 2 is out of range for shape [2,3] (expected in [-2, 1])", () -> t.slice(2, 0, 1));
        assertMessage("slice: cannot slice a 0-dimensional tensor", () -> Tensor.scalar(1f).slice(0, 0, 1));
        assertMessage("slice: elements 1 to 5 (step 2) are out of range for dimension 0 of size 3 in shape [3]",
                () -> new Op.Slice(0, 1, 2, 3).infer(List.of(meta(3))));
        assertMessage("select: index 3 is out of range for dimension 1 of size 3 in shape [2,3]", () -> t.select(1, 3));
        assertMessage("select: index -3 is out of range for dimension 0 of size 2 in shape [2,3]", () -> t.select(0, -3));
        assertMessage("select: index 0 is out of range for dimension 0 of size 0 in shape [0]", () -> zeros(0).select(0, 0));
    }

    @Test
    void splitErrors() {
        Tensor t = zeros(2, 3);
        assertMessage("split: sizes [1, 1] add up to 2 but dimension 1 of shape [2,3] is 3", () -> t.split(new int[] {1, 1}, 1));
        assertMessage("split: sizes [2, 2] add up to 4 but dimension 1 of shape [2,3] is 3", () -> t.split(new int[] {2, 2}, -1));
        assertMessage("split: sizes must be non-negative, got [-1, 4]", () -> t.split(new int[] {-1, 4}, 1));
        assertMessage("split: split size must be positive, got 0", () -> t.split(0, 1));
    }

    @Test
    void squeezeUnsqueezeDiagonalAndFlattenErrors() {
        Tensor t = zeros(2, 3);
        assertMessage("unsqueeze: dimension 3 is out of range for shape [2,3] (expected in [-3, 2])", () -> t.unsqueeze(3));
        assertMessage("squeeze: dimension -3 is out of range for shape [2,3] (expected in [-2, 1])", () -> t.squeeze(-3));
        assertMessage("diagonal: dimensions 1 and 1 must be distinct and within shape [2,3]", () -> t.diagonal(1, -1));
        assertMessage("diagonal: dimension 2 is out of range for shape [2,3] (expected in [-2, 1])", () -> t.diagonal(0, 2));
        assertMessage("flatten: dimension 2 is out of range for shape [2,3] (expected in [-2, 1])", () -> t.flatten(0, 2));
        assertMessage("flatten: start dimension 1 comes after end dimension 0 in shape [2,3]", () -> t.flatten(1, 0));
        assertMessage("flatten: start dimension -1 comes after end dimension 0 in shape [2,3]", () -> t.flatten(-1, 0));
    }

    @Test
    void zeroDimensionalTensorsCannotBeSelectedFromOrSplit() {
        Tensor s = Tensor.scalar(1f);
        assertMessage("select: cannot select from a 0-dimensional tensor", () -> s.select(0, 0));
        assertMessage("split: cannot split a 0-dimensional tensor", () -> s.split(1, 0));
        assertMessage("split: cannot split a 0-dimensional tensor", () -> s.split(new int[] {1}, 0));
    }

    private static void assertMessage(String expected, Executable call) {
        var e = assertThrows(KilnShapeException.class, call);
        assertEquals(expected, e.getMessage());
    }

    /** Zeros without a kernel: fresh storage is zeroed. */
    private static Tensor zeros(int... shape) { return Tensor.empty(DType.FLOAT32, Shape.of(shape)); }

    private static TensorMeta meta(int... shape) { return new TensorMeta(DType.FLOAT32, Shape.of(shape)); }

    // ================================================================ inputs

    /** A tensor in some layout and the same values as a reference. */
    record Input(Tensor tensor, Ref ref, Presentation presentation) {
        static Input of(int[] shape, DType dtype, Presentation p) {
            Ref ref = Ref.iota(shape);
            return new Input(TestTensors.tensor(ref.data, dtype, p, shape), ref, p);
        }

        @Override
        public String toString() { return tensor.dtype() + Shape.of(ref.shape).toString() + " " + presentation; }
    }

    @Provide
    Arbitrary<Input> inputs() {
        return net.jqwik.api.Combinators.combine(shapes(), types(), Arbitraries.of(Presentation.class)).as(Input::of);
    }

    @Provide
    Arbitrary<int[]> shapes() { return TestTensors.shapes(0, 4, 4); }

    @Provide
    Arbitrary<DType> types() { return Arbitraries.of(TYPES); }

    // ================================================================ the reference

    /**
     * A row-major array of doubles. Every view is defined by where each output
     * multi-index reads in the input, which is the definition the ops must meet.
     */
    record Ref(int[] shape, double[] data) {
        /** Elements 1, 2, 3, ...: distinct and exact in every tested dtype (at most 256 of them). */
        static Ref iota(int[] shape) {
            double[] d = new double[product(shape, 0, shape.length)];
            for (int i = 0; i < d.length; i++) d[i] = i + 1;
            return new Ref(shape, d);
        }

        int rank() { return shape.length; }
        int numel() { return data.length; }

        Ref map(int[] outShape, Function<int[], int[]> source) {
            double[] out = new double[product(outShape, 0, outShape.length)];
            for (int i = 0; i < out.length; i++) {
                int[] src = source.apply(TestTensors.unravel(i, outShape));
                long flat = 0;
                for (int d = 0; d < shape.length; d++) flat = flat * shape[d] + src[d];
                out[i] = data[(int) flat];
            }
            return new Ref(outShape, out);
        }

        Ref permute(int[] p) {
            int[] out = new int[p.length];
            for (int i = 0; i < p.length; i++) out[i] = shape[p[i]];
            return map(out, idx -> {
                int[] src = new int[p.length];
                for (int i = 0; i < p.length; i++) src[p[i]] = idx[i];
                return src;
            });
        }

        /** The given indices of one dimension, in order. */
        Ref pick(int dim, int[] indices) {
            int[] out = shape.clone();
            out[dim] = indices.length;
            return map(out, idx -> {
                int[] src = idx.clone();
                src[dim] = indices[idx[dim]];
                return src;
            });
        }

        /** Removes a dimension of size 1. */
        Ref dropDim(int dim) {
            int[] out = new int[shape.length - 1];
            for (int i = 0, j = 0; i < shape.length; i++) if (i != dim) out[j++] = shape[i];
            return new Ref(out, data);
        }

        Ref expand(int[] target) {
            int lead = target.length - shape.length;
            return map(target, idx -> {
                int[] src = new int[shape.length];
                for (int i = 0; i < shape.length; i++) src[i] = shape[i] == 1 ? 0 : idx[lead + i];
                return src;
            });
        }

        Ref diagonal(int a, int b) {
            int[] out = new int[shape.length - 1];
            for (int i = 0, j = 0; i < shape.length; i++) if (i != a && i != b) out[j++] = shape[i];
            out[out.length - 1] = Math.min(shape[a], shape[b]);
            return map(out, idx -> {
                int[] src = new int[shape.length];
                for (int i = 0, j = 0; i < shape.length; i++) {
                    src[i] = i == a || i == b ? idx[out.length - 1] : idx[j++];
                }
                return src;
            });
        }

        Ref reshape(int[] newShape) {
            if (product(newShape, 0, newShape.length) != data.length) throw new IllegalArgumentException("test bug");
            return new Ref(newShape, data);
        }
    }

    private static void assertView(Input in, Ref expected, Tensor actual) {
        assertSame(in.tensor.storage(), actual.storage(), "a view must share its input's storage");
        assertValues(expected, actual, in.toString());
    }

    private static void assertValues(Ref expected, Tensor actual) { assertValues(expected, actual, ""); }

    private static void assertValues(Ref expected, Tensor actual, String what) {
        assertEquals(Shape.of(expected.shape), actual.shape(), what);
        assertArrayEquals(expected.data, TestTensors.values(actual), what);
    }

    /** The indices Python's {@code range(n)[start:end:step]} selects (CPython's PySlice_AdjustIndices). */
    static int[] pythonSlice(int n, long start, long end, long step) {
        long lo = step < 0 ? -1 : 0, hi = step < 0 ? n - 1 : n;
        start = start < 0 ? Math.max(start + n, lo) : Math.min(start, hi);
        end = end < 0 ? Math.max(end + n, lo) : Math.min(end, hi);
        List<Integer> out = new ArrayList<>();
        for (long i = start; step > 0 ? i < end : i > end; i += step) out.add((int) i);
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int[] randomPermutation(int n, SplittableRandom r) {
        int[] p = identity(n);
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1), t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** A random shape with the same number of elements (for empty shapes, any shape containing a 0). */
    private static int[] randomFactoring(int[] shape, SplittableRandom r) {
        int n = product(shape, 0, shape.length);
        List<Integer> dims = new ArrayList<>();
        if (n == 0) {
            dims.add(0);
            while (dims.size() < Shape.MAX_RANK && r.nextInt(3) != 0) dims.add(r.nextInt(0, 4));
        } else {
            for (int left = n; left > 1; ) {
                int f = smallestFactor(left);
                int d = r.nextBoolean() ? f : left; // take one prime factor or the whole rest
                dims.add(d);
                left /= d;
            }
            while (dims.size() < Shape.MAX_RANK && r.nextInt(4) == 0) dims.add(r.nextInt(dims.size() + 1), 1);
        }
        java.util.Collections.shuffle(dims, new java.util.Random(r.nextLong()));
        return dims.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int smallestFactor(int n) {
        for (int f = 2; f * f <= n; f++) if (n % f == 0) return f;
        return n;
    }

    private static int[] identity(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        return p;
    }

    private static int[] range(int from, int to) {
        int[] out = new int[Math.max(0, to - from)];
        for (int i = 0; i < out.length; i++) out[i] = from + i;
        return out;
    }

    private static int product(int[] d, int from, int to) {
        int p = 1;
        for (int i = from; i < to; i++) p *= d[i];
        return p;
    }
}
