package dev.kiln.npu.kernels;

import dev.kiln.nn.F;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** gather, gather_elements, concat, tril/triu and rope against plain references written here. */
class IndexingProperties {

    private static final Presentation[] PRESENTATIONS = Presentation.values();

    @Provide
    Arbitrary<DType> anyType() { return Arbitraries.of(DType.values()); }

    @Provide
    Arbitrary<DType> floatType() { return Arbitraries.of(DType.FLOAT32, DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.BFLOAT16); }

    @Provide
    Arbitrary<DType> indexType() { return Arbitraries.of(DType.INT32, DType.INT64); }

    @Provide
    Arbitrary<int[]> shapes() { return TestTensors.shapes(1, 4, 5); }

    /** Random values of a dtype, exactly representable in it (with NaN and infinities for float types). */
    static double[] data(DType t, long n, long seed) {
        double[] raw = TestTensors.randomData(n, seed, t.isFloatingPoint() ? 4 : 100, t.isFloatingPoint());
        for (int i = 0; i < raw.length; i++) raw[i] = TestTensors.roundTo(t, raw[i]);
        return raw;
    }

    /** Contiguous half the time (the fast paths), else one of the other presentations. */
    static Tensor tensor(double[] values, DType t, SplittableRandom r, int... shape) {
        Presentation p = r.nextBoolean() ? Presentation.CONTIGUOUS : PRESENTATIONS[r.nextInt(PRESENTATIONS.length)];
        return TestTensors.tensor(values, t, p, shape);
    }

    /** Index values in [-size, size): every valid index, negative ones included. */
    static double[] indices(long n, int size, SplittableRandom r) {
        double[] out = new double[(int) n];
        for (int i = 0; i < out.length; i++) out[i] = r.nextInt(2 * size) - size;
        return out;
    }

    static int[] randomShape(SplittableRandom r, int minRank, int maxRank, int maxDim) {
        int[] s = new int[minRank + r.nextInt(maxRank - minRank + 1)];
        for (int i = 0; i < s.length; i++) s[i] = r.nextInt(8) == 0 ? 0 : 1 + r.nextInt(maxDim);
        return s;
    }

    static long resolve(double index, int size) { return index < 0 ? (long) index + size : (long) index; }

    // ================================================================ gather

    @Property(tries = 150)
    void gatherMatchesReference(@ForAll("shapes") int[] dataShape, @ForAll @IntRange(min = 0, max = 3) int axisChoice,
                                @ForAll("anyType") DType type, @ForAll("indexType") DType indexType, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int axis = axisChoice % dataShape.length, size = dataShape[axis];
        int[] idxShape = randomShape(r, 0, 3, 4);
        if (size == 0 && Shape.of(idxShape).numel() > 0) idxShape = new int[] {0};
        double[] values = data(type, Shape.of(dataShape).numel(), r.nextLong());
        double[] idx = indices(Shape.of(idxShape).numel(), size, r);
        Tensor out = tensor(values, type, r, dataShape).indexSelect(axis, tensor(idx, indexType, r, idxShape));

        int outer = prod(dataShape, 0, axis), inner = prod(dataShape, axis + 1, dataShape.length);
        double[] expected = new double[outer * idx.length * inner];
        for (int o = 0; o < outer; o++) {
            for (int t = 0; t < idx.length; t++) {
                long row = resolve(idx[t], size);
                for (int e = 0; e < inner; e++) expected[(o * idx.length + t) * inner + e] = values[(int) ((o * size + row) * inner + e)];
            }
        }
        int[] outShape = concat(Arrays.copyOf(dataShape, axis), idxShape, Arrays.copyOfRange(dataShape, axis + 1, dataShape.length));
        TestTensors.assertClose("gather " + type + Arrays.toString(dataShape) + " axis " + axis + " idx " + Arrays.toString(idxShape),
                Shape.of(outShape), expected, out, 0, 0);
        assertEquals(type, out.dtype());
    }

    @Test
    void embeddingLooksUpRows() {
        SplittableRandom r = new SplittableRandom(7);
        int vocab = 50, dim = 37;
        double[] weights = data(DType.FLOAT32, (long) vocab * dim, 3);
        double[] ids = new double[3 * 11];
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(vocab);
        Tensor out = F.embedding(TestTensors.tensor(ids, DType.INT64, 3, 11), TestTensors.tensor(weights, DType.FLOAT32, vocab, dim));
        double[] expected = new double[ids.length * dim];
        for (int t = 0; t < ids.length; t++) System.arraycopy(weights, (int) ids[t] * dim, expected, t * dim, dim);
        TestTensors.assertClose("embedding", Shape.of(3, 11, dim), expected, out, 0, 0);
    }

    @Test
    void gatherRejectsOutOfRangeIndices() {
        Tensor data = TestTensors.tensor(new double[15], DType.FLOAT32, 5, 3);
        KilnException high = assertThrows(KilnException.class,
                () -> data.indexSelect(0, TestTensors.tensor(new double[] {1, 7, 2}, DType.INT64, 3)));
        assertEquals("gather: index 7 is out of range for dimension 0 of size 5 in shape [5,3]", high.getMessage());
        KilnException low = assertThrows(KilnException.class,
                () -> F.embedding(TestTensors.tensor(new double[] {0, -6}, DType.INT32, 2), data));
        assertEquals("gather: index -6 is out of range for dimension 0 of size 5 in shape [5,3]", low.getMessage());
        KilnException axis1 = assertThrows(KilnException.class,
                () -> data.indexSelect(1, TestTensors.tensor(new double[] {3}, DType.INT32, 1)));
        assertEquals("gather: index 3 is out of range for dimension 1 of size 3 in shape [5,3]", axis1.getMessage());
        KilnTypeException type = assertThrows(KilnTypeException.class,
                () -> data.indexSelect(0, TestTensors.tensor(new double[] {1}, DType.FLOAT32, 1)));
        assertEquals("gather: indices must be int32 or int64, got float32", type.getMessage());
    }

    // ================================================================ gather_elements

    @Property(tries = 150)
    void gatherElementsMatchesReference(@ForAll("shapes") int[] dataShape, @ForAll @IntRange(min = 0, max = 3) int axisChoice,
                                        @ForAll("anyType") DType type, @ForAll("indexType") DType indexType, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int axis = axisChoice % dataShape.length, size = dataShape[axis];
        int[] idxShape = new int[dataShape.length];
        for (int d = 0; d < idxShape.length; d++) idxShape[d] = d == axis ? r.nextInt(5) : r.nextInt(dataShape[d] + 1);
        if (size == 0) idxShape[axis] = 0;
        double[] values = data(type, Shape.of(dataShape).numel(), r.nextLong());
        double[] idx = indices(Shape.of(idxShape).numel(), size, r);
        Tensor out = tensor(values, type, r, dataShape).gather(axis - dataShape.length, tensor(idx, indexType, r, idxShape));

        double[] expected = new double[idx.length];
        long[] dataStrides = Shape.of(dataShape).contiguousStrides();
        for (int x = 0; x < idx.length; x++) {
            int[] pos = TestTensors.unravel(x, idxShape);
            pos[axis] = (int) resolve(idx[x], size);
            long flat = 0;
            for (int d = 0; d < pos.length; d++) flat += pos[d] * dataStrides[d];
            expected[x] = values[(int) flat];
        }
        TestTensors.assertClose("gather_elements " + type + Arrays.toString(dataShape) + " axis " + axis + " idx " + Arrays.toString(idxShape),
                Shape.of(idxShape), expected, out, 0, 0);
    }

    @Test
    void gatherElementsOfScalars() {
        Tensor data = TestTensors.tensor(new double[] {4.5}, DType.FLOAT64);
        assertArrayEquals(new double[] {4.5}, TestTensors.values(data.gather(0, TestTensors.tensor(new double[] {-1}, DType.INT64))));
        KilnException e = assertThrows(KilnException.class, () -> data.gather(0, TestTensors.tensor(new double[] {1}, DType.INT64)));
        assertEquals("gather_elements: index 1 is out of range for dimension 0 of size 1 in shape []", e.getMessage());
    }

    @Test
    void gatherElementsRejectsOutOfRangeIndices() {
        Tensor data = TestTensors.tensor(new double[] {1, 2, 3, 4, 5, 6}, DType.INT32, 2, 3);
        KilnException e = assertThrows(KilnException.class,
                () -> data.gather(1, TestTensors.tensor(new double[] {0, 2, -4, 1}, DType.INT64, 2, 2)));
        assertEquals("gather_elements: index -4 is out of range for dimension 1 of size 3 in shape [2,3]", e.getMessage());
        KilnShapeException shape = assertThrows(KilnShapeException.class,
                () -> data.gather(1, TestTensors.tensor(new double[] {0, 0, 0}, DType.INT64, 3, 1)));
        assertEquals("gather_elements: index [3,1] is larger than data [2,3] in dimension 0 (3 vs 2)", shape.getMessage());
        assertArrayEquals(new double[] {3, 1, 4, 6},
                TestTensors.values(data.gather(1, TestTensors.tensor(new double[] {-1, 0, 0, 2}, DType.INT32, 2, 2))));
    }

    // ================================================================ concat

    @Property(tries = 150)
    void concatMatchesReference(@ForAll("shapes") int[] base, @ForAll @IntRange(min = 0, max = 3) int dimChoice,
                                @ForAll @IntRange(min = 1, max = 4) int count, @ForAll boolean mixedTypes,
                                @ForAll("anyType") DType firstType, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int dim = dimChoice % base.length;
        DType[] allTypes = DType.values();
        Tensor[] parts = new Tensor[count];
        double[][] values = new double[count][];
        int[][] shapes = new int[count][];
        DType outType = firstType;
        for (int i = 0; i < count; i++) {
            DType t = i == 0 || !mixedTypes ? firstType : allTypes[r.nextInt(allTypes.length)];
            // uint64 with a signed type has no common type (tested with promotion).
            if (t != outType && t.isInteger() && outType.isInteger() && (t == DType.UINT64) != (outType == DType.UINT64)) t = outType;
            outType = DType.promote(outType, t);
            shapes[i] = base.clone();
            shapes[i][dim] = r.nextInt(4) == 0 ? 0 : 1 + r.nextInt(3);
            values[i] = data(t, Shape.of(shapes[i]).numel(), r.nextLong());
            parts[i] = tensor(values[i], t, r, shapes[i]);
        }
        Tensor out = Tensor.cat(dim - base.length, parts);

        int outer = prod(base, 0, dim), inner = prod(base, dim + 1, base.length);
        int total = Arrays.stream(shapes).mapToInt(s -> s[dim]).sum();
        double[] expected = new double[outer * total * inner];
        for (int o = 0; o < outer; o++) {
            int at = 0;
            for (int i = 0; i < count; i++) {
                int len = shapes[i][dim] * inner;
                for (int e = 0; e < len; e++) expected[(o * total) * inner + at + e] = TestTensors.roundTo(outType, values[i][o * len + e]);
                at += len;
            }
        }
        int[] outShape = base.clone();
        outShape[dim] = total;
        assertEquals(outType, out.dtype());
        TestTensors.assertClose("concat dim " + dim + " of " + Arrays.deepToString(shapes), Shape.of(outShape), expected, out, 0, 0);
    }

    @Test
    void concatPromotesExactly() {
        // int64 values beyond 2^24 round once to float32, as a cast from int64 does.
        long big = (1L << 40) + 3;
        Tensor ints = Tensor.of(new long[] {big, -7}, 2);
        Tensor halves = TestTensors.tensor(new double[] {0.5}, DType.FLOAT16, 1);
        Tensor out = Tensor.cat(0, ints, halves);
        assertEquals(DType.FLOAT16, out.dtype());
        assertArrayEquals(new double[] {Double.POSITIVE_INFINITY, -7, 0.5}, TestTensors.values(out));
        // 2^54 + 2^30 + 1 rounds up to float32 directly, but to 2^54 through double (a tie after the first rounding).
        long tie = (1L << 54) + (1L << 30) + 1;
        Tensor f = Tensor.cat(0, Tensor.of(new long[] {big, tie}, 2), Tensor.of(new float[] {1.5f}, 1));
        assertArrayEquals(new double[] {(float) big, (1L << 54) + (1L << 31), 1.5}, TestTensors.values(f));
        Tensor b = Tensor.cat(0, Tensor.of(new boolean[] {true, false}, 2), Tensor.of(new int[] {5}, 1));
        assertEquals(DType.INT32, b.dtype());
        assertArrayEquals(new double[] {1, 0, 5}, TestTensors.values(b));
    }

    @Test
    void concatAndStackRejectMismatchedShapes() {
        Tensor a = TestTensors.tensor(new double[6], DType.FLOAT32, 2, 3), b = TestTensors.tensor(new double[8], DType.FLOAT32, 2, 4);
        KilnShapeException e = assertThrows(KilnShapeException.class, () -> Tensor.cat(0, a, b));
        assertEquals("concat: tensor 1 has shape [2,4] but tensor 0 has shape [2,3]: dimension 1 is 4 vs 3", e.getMessage());
        assertEquals(Shape.of(2, 7), Tensor.cat(1, a, b).shape());
        assertArrayEquals(new double[] {1, 2, 1, 2}, TestTensors.values(Tensor.stack(1, Tensor.of(new float[] {1, 1}, 2), Tensor.of(new float[] {2, 2}, 2))));
    }

    // ================================================================ tril / triu

    @Provide
    Arbitrary<Long> diagonals() {
        return Arbitraries.oneOf(Arbitraries.longs().between(-7, 7), Arbitraries.of(Long.MIN_VALUE, Long.MAX_VALUE, -100L, 100L));
    }

    @Property(tries = 150)
    void triangleMatchesReference(@ForAll("shapes") int[] batch, @ForAll @IntRange(min = 0, max = 6) int rows,
                                  @ForAll @IntRange(min = 0, max = 7) int cols, @ForAll("diagonals") long diagonal,
                                  @ForAll boolean upper, @ForAll("anyType") DType type, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] shape = Arrays.copyOf(batch, Math.min(batch.length, 2) + 2);
        shape[shape.length - 2] = rows;
        shape[shape.length - 1] = cols;
        double[] values = data(type, Shape.of(shape).numel(), r.nextLong());
        Tensor x = tensor(values, type, r, shape);
        Tensor out = upper ? x.triu(diagonal) : x.tril(diagonal);
        double[] expected = new double[values.length];
        for (int e = 0; e < values.length; e++) {
            long j = e % cols, i = (e / cols) % rows;
            boolean keep = upper ? j - i >= diagonal : j - i <= diagonal;
            expected[e] = keep ? values[e] : 0;
        }
        TestTensors.assertClose((upper ? "triu " : "tril ") + diagonal + " " + type + Arrays.toString(shape), Shape.of(shape), expected, out, 0, 0);
        assertEquals(type, out.dtype());
    }

    @Test
    void triangleNeedsTwoDimensions() {
        KilnShapeException e = assertThrows(KilnShapeException.class, () -> Tensor.of(new float[] {1, 2, 3}, 3).tril());
        assertEquals("tril: input needs at least 2 dimensions, got shape [3]", e.getMessage());
    }

    // ================================================================ rope

    static double ropeTolerance(DType t) {
        return switch (t) {
            case FLOAT64 -> 1e-12;
            case FLOAT32 -> 2e-6;
            case FLOAT16 -> 2e-3;
            default -> 1.6e-2;
        };
    }

    /** The rotation in double: pairs (i, i + D/2) or (2i, 2i+1) become (a cos - b sin, b cos + a sin). */
    static double[] ropeReference(double[] x, int[] xShape, double[] cos, double[] sin, int[] cosShape, int[] sinShape, boolean interleaved) {
        int width = xShape[xShape.length - 1], half = width / 2;
        double[] out = new double[x.length];
        for (int row = 0; row < x.length / Math.max(width, 1); row++) {
            for (int i = 0; i < half; i++) {
                int ia = row * width + (interleaved ? 2 * i : i), ib = row * width + (interleaved ? 2 * i + 1 : i + half);
                int[] pos = TestTensors.unravel((long) row * half + i, withLast(xShape, half));
                double c = cos[(int) TestTensors.ravelBroadcast(pos, cosShape)], s = sin[(int) TestTensors.ravelBroadcast(pos, sinShape)];
                out[ia] = x[ia] * c - x[ib] * s;
                out[ib] = x[ib] * c + x[ia] * s;
            }
        }
        return out;
    }

    static int[] withLast(int[] shape, int last) {
        int[] s = shape.clone();
        s[s.length - 1] = last;
        return s;
    }

    @Property(tries = 150)
    void ropeMatchesReference(@ForAll("shapes") int[] batch, @ForAll @IntRange(min = 0, max = 40) int halfWidth,
                              @ForAll boolean interleaved, @ForAll("floatType") DType type, @ForAll boolean tablesInXType,
                              @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] xShape = Arrays.copyOf(batch, Math.min(batch.length, 3) + 1);
        xShape[xShape.length - 1] = 2 * halfWidth;
        int[] cosShape = TestTensors.broadcastPartner(withLast(xShape, halfWidth), r.nextLong());
        int[] sinShape = TestTensors.broadcastPartner(withLast(xShape, halfWidth), r.nextLong());
        DType tableType = tablesInXType ? type : DType.FLOAT32;
        double[] x = data(type, Shape.of(xShape).numel(), r.nextLong());
        double[] cos = data(tableType, Shape.of(cosShape).numel(), r.nextLong());
        double[] sin = data(tableType, Shape.of(sinShape).numel(), r.nextLong());
        Tensor out = F.rotaryEmbedding(tensor(x, type, r, xShape), tensor(cos, tableType, r, cosShape),
                tensor(sin, tableType, r, sinShape), interleaved);
        double tol = ropeTolerance(type);
        TestTensors.assertClose("rope " + type + Arrays.toString(xShape) + " cos " + Arrays.toString(cosShape) + " interleaved " + interleaved,
                Shape.of(xShape), ropeReference(x, xShape, cos, sin, cosShape, sinShape, interleaved), out, tol, tol * 16);
        assertEquals(type, out.dtype());
    }

    @Property(tries = 60)
    void ropeFloat32LlamaLayouts(@ForAll @IntRange(min = 1, max = 80) int half, @ForAll @IntRange(min = 1, max = 3) int heads,
                                 @ForAll @IntRange(min = 1, max = 9) int positions, @ForAll boolean headsFirst,
                                 @ForAll boolean interleaved, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int batch = 1 + r.nextInt(2);
        int[] xShape = headsFirst ? new int[] {batch, heads, positions, 2 * half} : new int[] {batch, positions, heads, 2 * half};
        int[] tableShape = headsFirst ? new int[] {positions, half} : new int[] {positions, 1, half};
        double[] x = data(DType.FLOAT32, Shape.of(xShape).numel(), r.nextLong());
        double[] cos = data(DType.FLOAT32, Shape.of(tableShape).numel(), r.nextLong());
        double[] sin = data(DType.FLOAT32, Shape.of(tableShape).numel(), r.nextLong());
        Tensor out = F.rotaryEmbedding(TestTensors.tensor(x, DType.FLOAT32, xShape), TestTensors.tensor(cos, DType.FLOAT32, tableShape),
                TestTensors.tensor(sin, DType.FLOAT32, tableShape), interleaved);
        TestTensors.assertClose("rope " + Arrays.toString(xShape) + " interleaved " + interleaved, Shape.of(xShape),
                ropeReference(x, xShape, cos, sin, tableShape, tableShape, interleaved), out, 2e-6, 3e-5);
    }

    @Test
    void ropeOfALargeViewSplitBetweenWorkers() {
        // q of a decoder block: [1, S, H, D] from its projection, read as [1, H, S, D]; its rows are
        // cut into chunks for the workers, each walking its rows from where it starts.
        int positions = 256, heads = 8, width = 64;
        int[] projected = {1, positions, heads, width}, tables = {positions, width / 2};
        double[] x = data(DType.FLOAT32, Shape.of(projected).numel(), 5);
        double[] cos = data(DType.FLOAT32, Shape.of(tables).numel(), 6), sin = data(DType.FLOAT32, Shape.of(tables).numel(), 7);
        for (boolean interleaved : new boolean[] {false, true}) {
            Tensor q = TestTensors.tensor(x, DType.FLOAT32, projected).transpose(1, 2);
            Tensor out = F.rotaryEmbedding(q, TestTensors.tensor(cos, DType.FLOAT32, tables), TestTensors.tensor(sin, DType.FLOAT32, tables),
                    interleaved);
            int[] viewed = {1, heads, positions, width};
            double[] xViewed = TestTensors.values(q.contiguous());
            TestTensors.assertClose("rope of a transposed q, interleaved " + interleaved, Shape.of(viewed),
                    ropeReference(xViewed, viewed, cos, sin, tables, tables, interleaved), out, 2e-6, 1e-5);
        }
    }

    @Test
    void concatOfRowsLongerThanACopyChunk() {
        // Rows of 70,000 are copied in two pieces each; a worker's share can start in a row's second piece.
        int length = 70_000;
        double[] a = data(DType.FLOAT32, 3L * length, 11), b = data(DType.FLOAT32, 2L * length, 12);
        Tensor strided = TestTensors.tensor(b, DType.FLOAT32, length, 2).transpose(0, 1);
        Tensor out = Tensor.cat(0, TestTensors.tensor(a, DType.FLOAT32, 3, length), strided);
        double[] expected = new double[5 * length];
        System.arraycopy(a, 0, expected, 0, a.length);
        for (int row = 0; row < 2; row++) {
            for (int i = 0; i < length; i++) expected[(3 + row) * length + i] = b[i * 2 + row];
        }
        assertArrayEquals(expected, TestTensors.values(out));
    }

    @Test
    void ropeVectorisedAndGenericPathsAgreeBitwise() {
        for (boolean interleaved : new boolean[] {false, true}) {
            for (int width : new int[] {2, 6, 64, 128, 2 * 16 + 6, 2 * 8 + 2, 80}) {
                // LLaMA layouts: x [B, H, S, D] with tables [S, D/2], and x [B, S, H, D] with tables [S, 1, D/2].
                int[][] xShapes = {{2, 3, 5, width}, {2, 5, 3, width}};
                int[][] tableShapes = {{5, width / 2}, {5, 1, width / 2}};
                for (int layout = 0; layout < 2; layout++) {
                    int[] xs = xShapes[layout], ts = tableShapes[layout];
                    double[] x = data(DType.FLOAT32, Shape.of(xs).numel(), width + layout);
                    double[] angle = TestTensors.randomData(Shape.of(ts).numel(), 99, 3, false);
                    double[] cos = Arrays.stream(angle).map(a -> (float) Math.cos(a)).toArray();
                    double[] sin = Arrays.stream(angle).map(a -> (float) Math.sin(a)).toArray();
                    Tensor fast = F.rotaryEmbedding(TestTensors.tensor(x, DType.FLOAT32, xs), TestTensors.tensor(cos, DType.FLOAT32, ts),
                            TestTensors.tensor(sin, DType.FLOAT32, ts), interleaved);
                    Tensor generic = F.rotaryEmbedding(TestTensors.tensor(x, DType.FLOAT32, Presentation.STRIDED, xs),
                            TestTensors.tensor(cos, DType.FLOAT32, Presentation.TRANSPOSED, ts),
                            TestTensors.tensor(sin, DType.FLOAT32, Presentation.STRIDED, ts), interleaved);
                    String what = "rope width " + width + " layout " + layout + " interleaved " + interleaved;
                    assertArrayEquals(TestTensors.values(generic), TestTensors.values(fast), what);
                    TestTensors.assertClose(what, Shape.of(xs), ropeReference(x, xs, cos, sin, ts, ts, interleaved), fast, 2e-6, 1e-5);
                }
            }
        }
    }

    @Test
    void ropeRejectsOddWidthsAndMismatchedTables() {
        Tensor x = TestTensors.tensor(new double[10], DType.FLOAT32, 2, 5);
        Tensor t = TestTensors.tensor(new double[2], DType.FLOAT32, 2);
        KilnShapeException odd = assertThrows(KilnShapeException.class, () -> F.rotaryEmbedding(x, t, t, false));
        assertEquals("rope: the last dimension of x must be even, got shape [2,5]", odd.getMessage());
        Tensor x4 = TestTensors.tensor(new double[8], DType.FLOAT32, 2, 4);
        Tensor wide = TestTensors.tensor(new double[4], DType.FLOAT32, 4);
        KilnShapeException mismatch = assertThrows(KilnShapeException.class, () -> F.rotaryEmbedding(x4, wide, t, false));
        assertEquals("rope: shapes [2,2] and [4] do not broadcast: dimension -1 is 2 vs 4", mismatch.getMessage());
    }

    // ================================================================ helpers

    static int prod(int[] shape, int from, int to) {
        int p = 1;
        for (int i = from; i < to; i++) p *= shape[i];
        return p;
    }

    static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }
}
