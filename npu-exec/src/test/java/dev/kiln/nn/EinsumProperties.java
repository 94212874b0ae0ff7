package dev.kiln.nn;

import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * F.einsum against a naive einsum written here: parse the equation, then loop over
 * every assignment of every label, multiplying operand elements in double precision.
 * Equations are generated at random (labels, repeats, ellipses, broadcasting, 1-3
 * operands, implicit and explicit outputs) and rendered with random spacing.
 */
class EinsumProperties {

    private static final DType[] TYPES = {DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.BFLOAT16, DType.INT32, DType.INT64};

    // ================================================================ random equations

    @Property(tries = 200)
    void randomEquationsMatchTheNaiveEinsum(@ForAll("types") DType dtype, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        RandomEquation eq = RandomEquation.generate(r);
        Tensor[] operands = new Tensor[eq.shapes.size()];
        double[][] values = new double[operands.length][];
        for (int k = 0; k < operands.length; k++) {
            int[] shape = eq.shapes.get(k);
            values[k] = randomValues(dtype, Shape.of(shape).numel(), r.nextLong());
            operands[k] = TestTensors.tensor(values[k], dtype, Presentation.values()[r.nextInt(4)], shape);
        }
        checkAgainstNaive(eq.text, operands, values, dtype);
    }

    @Provide
    Arbitrary<DType> types() { return Arbitraries.of(TYPES); }

    /** A random equation and operand shapes consistent with it. */
    record RandomEquation(String text, List<int[]> shapes) {
        static RandomEquation generate(SplittableRandom r) {
            String alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
            Map<Character, Integer> size = new LinkedHashMap<>();
            int labelCount = r.nextInt(1, 6);
            while (size.size() < labelCount) size.put(alphabet.charAt(r.nextInt(alphabet.length())), r.nextInt(20) == 0 ? 0 : r.nextInt(1, 4));
            List<Character> labels = new ArrayList<>(size.keySet());
            boolean ellipses = r.nextInt(5) < 2;
            int[] ellipsisSizes = new int[ellipses ? r.nextInt(1, 3) : 0];
            for (int i = 0; i < ellipsisSizes.length; i++) ellipsisSizes[i] = r.nextInt(1, 4);

            int operandCount = r.nextInt(1, 4);
            List<String> terms = new ArrayList<>();
            List<int[]> shapes = new ArrayList<>();
            int ellipsisRank = 0;
            for (int k = 0; k < operandCount; k++) {
                List<String> tokens = new ArrayList<>();
                List<Integer> dims = new ArrayList<>();
                Map<Character, Integer> broadcast = new LinkedHashMap<>();
                int named = r.nextInt(0, 4);
                for (int i = 0; i < named; i++) {
                    char c = labels.get(r.nextInt(labels.size()));
                    // Sometimes size 1 against a larger size elsewhere; a repeated label keeps its first choice.
                    int s = broadcast.computeIfAbsent(c, x -> r.nextInt(5) == 0 ? 1 : size.get(c));
                    tokens.add(String.valueOf(c));
                    dims.add(s);
                }
                if (ellipses && r.nextInt(3) > 0) {
                    int covered = r.nextInt(ellipsisSizes.length + 1);
                    ellipsisRank = Math.max(ellipsisRank, covered);
                    int at = r.nextInt(tokens.size() + 1);
                    tokens.add(at, "...");
                    List<Integer> ell = new ArrayList<>();
                    for (int j = ellipsisSizes.length - covered; j < ellipsisSizes.length; j++) ell.add(r.nextInt(4) == 0 ? 1 : ellipsisSizes[j]);
                    dims.addAll(at, ell);
                }
                terms.add(String.join(spaces(r), tokens));
                shapes.add(dims.stream().mapToInt(Integer::intValue).toArray());
            }
            StringBuilder text = new StringBuilder();
            for (int k = 0; k < terms.size(); k++) text.append(k > 0 ? spaces(r) + "," + spaces(r) : "").append(terms.get(k));
            if (r.nextInt(10) < 7) {
                // Explicit output: some of the labels used, in any order, maybe with the ellipsis.
                TreeSet<Character> used = new TreeSet<>();
                for (String t : terms) for (char c : t.toCharArray()) if (Character.isLetter(c)) used.add(c);
                List<String> out = new ArrayList<>();
                for (char c : used) if (r.nextBoolean()) out.add(String.valueOf(c));
                java.util.Collections.shuffle(out, new java.util.Random(r.nextLong()));
                if (ellipsisRank > 0 ? r.nextInt(4) > 0 : r.nextInt(5) == 0) out.add(r.nextInt(out.size() + 1), "...");
                text.append(spaces(r)).append("->").append(spaces(r)).append(String.join(spaces(r), out));
            }
            return new RandomEquation(text.toString(), shapes);
        }

        private static String spaces(SplittableRandom r) { return r.nextInt(4) == 0 ? " " : ""; }
    }

    // ================================================================ fixed equations

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            // The ONNX Einsum examples.
            "...ii ->...i | 2,3,3",
            "bij, bjk -> bik | 2,3,4; 2,4,5",
            "i,i | 5; 5",
            "ij-> | 3,4",
            "ij->i | 3,4",
            "ij->ji | 3,4",
            // Diagonals, traces, implicit outputs, broadcasting, empty dimensions, many operands.
            "ii->i | 4,4",
            "ii-> | 4,4",
            "ii | 3,3",
            "iii->i | 3,3,3",
            "...ii->...i | 2,1,3,3",
            "ij,jk | 3,4; 4,2",
            "ba | 2,3",
            "Ba | 2,3",
            "ij,ij->ij | 3,1; 1,4",
            "ij,jk->ik | 3,1; 4,2",
            "i,j->ij | 3; 4",
            "i,j,k->ijk | 2; 3; 4",
            "ij,jk,kl->il | 2,3; 3,4; 4,5",
            "ab,bc,cd,de->ae | 2,3; 3,2; 2,3; 3,2",
            "bhqd,bhkd->bhqk | 2,3,4,5; 2,3,6,5",
            "...ij,...jk->...ik | 2,1,3,4; 5,4,2",
            "...,...->... | 2,3; 3",
            "i...->... | 3,2,2",
            "ij...,jk...->ik | 2,3,4; 3,2,4",
            "-> | ()",
            "i-> | 0",
            "ij,jk->ik | 2,0; 0,3",
            "aAbB,Bb->aA | 2,3,4,4; 4,4"})
    void examplesMatchTheNaiveEinsum(String equation, String shapeList) {
        List<int[]> shapes = new ArrayList<>();
        for (String s : shapeList.split(";")) {
            shapes.add(s.strip().equals("()") ? new int[0] : Arrays.stream(s.split(",")).mapToInt(x -> Integer.parseInt(x.strip())).toArray());
        }
        SplittableRandom r = new SplittableRandom(equation.hashCode());
        for (DType dtype : TYPES) {
            for (Presentation p : Presentation.values()) {
                Tensor[] operands = new Tensor[shapes.size()];
                double[][] values = new double[operands.length][];
                for (int k = 0; k < operands.length; k++) {
                    values[k] = randomValues(dtype, Shape.of(shapes.get(k)).numel(), r.nextLong());
                    operands[k] = TestTensors.tensor(values[k], dtype, p, shapes.get(k));
                }
                checkAgainstNaive(equation, operands, values, dtype);
            }
        }
    }

    @Test
    void handComputedValues() {
        Tensor a = Tensor.of(new float[] {1, 2, 3}, 3), b = Tensor.of(new float[] {4, 5, 6}, 3);
        assertEquals(32.0, F.einsum("i,i", a, b).getDouble(0));
        Tensor m = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, TestTensors.values(F.einsum("ij->ji", m)));
        assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, TestTensors.values(F.einsum("ba", m)));
        assertArrayEquals(new double[] {6, 15}, TestTensors.values(F.einsum("ij->i", m)));
        assertEquals(21.0, F.einsum("ij->", m).getDouble(0));
        Tensor sq = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
        assertEquals(5.0, F.einsum("ii", sq).getDouble(0));
        assertArrayEquals(new double[] {1, 4}, TestTensors.values(F.einsum("ii->i", sq)));
        // [[1,2],[3,4]] @ [[1,2],[3,4]] = [[7,10],[15,22]]
        assertArrayEquals(new double[] {7, 10, 15, 22}, TestTensors.values(F.einsum("ij,jk->ik", sq, sq)));
    }

    @Test
    void dtypesPromoteAndInt32KeepsItsType() {
        Tensor f32 = Tensor.of(new float[] {1, 2}, 2);
        Tensor f64 = Tensor.of(new double[] {3, 4}, 2);
        Tensor result = F.einsum("i,i->", f32, f64);
        assertEquals(DType.FLOAT64, result.dtype());
        assertEquals(11.0, result.getDouble(0));
        Tensor i32 = Tensor.of(new int[] {1, 2, 3, 4}, 2, 2);
        Tensor trace = F.einsum("ii", i32);
        assertEquals(DType.INT32, trace.dtype());
        assertEquals(5.0, trace.getDouble(0));
        // int32 arithmetic wraps as a product in int32 would.
        Tensor big = Tensor.of(new int[] {1 << 20, 1 << 20}, 2);
        assertEquals((int) ((long) (1 << 20) * (1 << 20) * 2), F.einsum("i,i", big, big).getDouble(0));
    }

    @Test
    void nanPropagatesThroughAContraction() {
        Tensor a = Tensor.of(new float[] {1, Float.NaN, 2, 3}, 2, 2);
        Tensor b = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
        double[] v = TestTensors.values(F.einsum("ij,jk->ik", a, b));
        assertTrue(Double.isNaN(v[0]) && Double.isNaN(v[1]));
        assertEquals(2 * 1 + 3 * 3, v[2]);
        assertEquals(2 * 2 + 3 * 4, v[3]);
    }

    @Test
    void aPermutationIsAViewOfTheOperand() {
        Tensor m = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        assertSame(m.storage(), F.einsum("ij->ji", m).storage());
        Tensor sq = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
        assertSame(sq.storage(), F.einsum("ii->i", sq).storage());
    }

    // ================================================================ lowering

    @Test
    void batchedContractionsAreOneMatmulWithoutBroadcastProducts() {
        List<Op> ops = new ArrayList<>();
        List<TensorMeta> outputs = new ArrayList<>();
        Tensor q = Tensor.randn(1, 2, 3, 16, 8), k = Tensor.randn(2, 2, 3, 32, 8);
        Tensor scores = recording(ops, outputs, () -> F.einsum("bhqd,bhkd->bhqk", q, k));
        assertEquals(Shape.of(2, 3, 16, 32), scores.shape());
        assertEquals(1, ops.stream().filter(op -> op instanceof Op.MatMul).count(), ops.toString());
        assertFalse(ops.stream().anyMatch(op -> op instanceof Op.Binary || op instanceof Op.Reduce), ops.toString());
        long largest = outputs.stream().mapToLong(m -> m.shape().numel()).max().orElseThrow();
        assertTrue(largest <= scores.numel(), "an intermediate of " + largest + " elements: " + outputs);
    }

    @Test
    void labelsAreSummedAsSoonAsNothingLaterNeedsThem() {
        List<Op> ops = new ArrayList<>();
        List<TensorMeta> outputs = new ArrayList<>();
        Tensor a = Tensor.randn(1, 4, 50), b = Tensor.randn(2, 4, 6), c = Tensor.randn(3, 6, 70);
        // 'x' belongs to a alone and is summed before any product; 'j' is contracted by a matmul,
        // never by a [4,6,70] broadcast product and a sum.
        Tensor out = recording(ops, outputs, () -> F.einsum("ix,ij,jk->ik", a, b, c));
        assertEquals(Shape.of(4, 70), out.shape());
        assertTrue(ops.getFirst() instanceof Op.Reduce, ops.toString());
        assertEquals(1, ops.stream().filter(op -> op instanceof Op.Reduce).count(), ops.toString());
        assertEquals(1, ops.stream().filter(op -> op instanceof Op.MatMul).count(), ops.toString());
        long largest = outputs.stream().mapToLong(m -> m.shape().numel()).max().orElseThrow();
        assertTrue(largest <= c.numel(), "an intermediate of " + largest + " elements: " + outputs);
    }

    @Test
    void einsumNeedsOnlyShapesSoATracerRecordsItAsPrimitives() {
        List<Op> ops = new ArrayList<>();
        Dispatch.Interceptor symbolic = new Dispatch.Interceptor() {
            @Override
            public Tensor[] apply(Op op, Tensor[] inputs, List<TensorMeta> outs) {
                ops.add(op);
                return outs.stream().map(m -> Tensor.symbolic(m, new Object())).toArray(Tensor[]::new);
            }

            @Override
            public Tensor materialize(Tensor t) { throw new AssertionError("einsum read data of " + t.meta()); }
        };
        Tensor a = Tensor.symbolic(new TensorMeta(DType.FLOAT32, Shape.of(2, 3, 3)), "a");
        Tensor b = Tensor.symbolic(new TensorMeta(DType.FLOAT32, Shape.of(3, 4)), "b");
        Tensor out = Dispatch.intercepting(symbolic, () -> F.einsum("...ii,ik->...k", a, b));
        assertEquals(Shape.of(2, 4), out.shape());
        assertTrue(ops.stream().anyMatch(op -> op instanceof Op.Diagonal), ops.toString());
        assertTrue(ops.stream().anyMatch(op -> op instanceof Op.MatMul), ops.toString());
    }

    private static Tensor recording(List<Op> ops, List<TensorMeta> outputs, java.util.function.Supplier<Tensor> body) {
        Dispatch.Interceptor recorder = new Dispatch.Interceptor() {
            @Override
            public Tensor[] apply(Op op, Tensor[] inputs, List<TensorMeta> outs) {
                ops.add(op);
                outputs.addAll(outs);
                return Dispatch.intercepting(null, () -> Dispatch.apply(op, inputs));
            }

            @Override
            public Tensor materialize(Tensor t) { return t; }
        };
        return Dispatch.intercepting(recorder, body);
    }

    // ================================================================ errors

    @Test
    void errorsSayWhatIsWrongAndWhere() {
        Tensor m23 = Tensor.randn(1, 2, 3), m34 = Tensor.randn(2, 3, 4), m44 = Tensor.randn(3, 4, 4), v3 = Tensor.randn(4, 3);
        Tensor t234 = Tensor.randn(5, 2, 3, 4);
        assertMessage(KilnException.class, "einsum: the equation 'ij,jk' has subscripts for 2 operands but 3 were given",
                () -> F.einsum("ij,jk", m23, m34, m34));
        assertMessage(KilnException.class, "einsum: the equation 'ij' has subscripts for 1 operand but 2 were given",
                () -> F.einsum("ij", m23, m34));
        assertMessage(KilnException.class, "einsum: expected at least one operand", () -> F.einsum("->"));
        assertMessage(KilnShapeException.class, "einsum: operand 1 has 3 dimensions but the subscripts 'ij' name 2",
                () -> F.einsum("ij,ij", m23, t234));
        assertMessage(KilnShapeException.class, "einsum: operand 0 has 1 dimension but the subscripts '...ij' name at least 2",
                () -> F.einsum("...ij", v3));
        assertMessage(KilnShapeException.class, "einsum: label 'j' has size 3 in operand 0 but 4 in operand 1",
                () -> F.einsum("ij,jk", m23, m44));
        assertMessage(KilnShapeException.class,
                "einsum: label 'i' is repeated in operand 0 but its dimensions 0 and 1 have different sizes (2 and 3) in shape [2,3]",
                () -> F.einsum("ii->i", m23));
        assertMessage(KilnShapeException.class,
                "einsum: the dimensions covered by '...' do not broadcast: [2,3] in operand 0 and [4] in operand 1",
                () -> F.einsum("...,...", m23, Tensor.randn(6, 4)));
        assertMessage(KilnException.class, "einsum: output label 'k' does not appear in any operand's subscripts",
                () -> F.einsum("ij->ik", m23));
        assertMessage(KilnException.class, "einsum: output label 'i' appears more than once in the output 'ii'",
                () -> F.einsum("ij->ii", m23));
        assertMessage(KilnException.class,
                "einsum: invalid character '1' in the equation 'i1->i'; subscripts are the letters a-z and A-Z, ',' between operands, '->' and '...'",
                () -> F.einsum("i1->i", v3));
        assertMessage(KilnException.class,
                "einsum: invalid character '-' in the equation 'ij-ji'; subscripts are the letters a-z and A-Z, ',' between operands, '->' and '...'",
                () -> F.einsum("ij-ji", m23));
        assertMessage(KilnException.class, "einsum: operand 0 has a '.' that is not part of an ellipsis '...' in '..i'",
                () -> F.einsum("..i", v3));
        assertMessage(KilnException.class, "einsum: operand 0 has more than one ellipsis '...' in '......'",
                () -> F.einsum("......", v3));
        assertMessage(KilnException.class, "einsum: the output has more than one ellipsis '...' in '...->......'",
                () -> F.einsum("...->......", v3));
        assertMessage(KilnException.class, "einsum: the equation 'i->i->i' contains more than one '->'",
                () -> F.einsum("i->i->i", v3));
        assertMessage(KilnTypeException.class, "einsum: bool operands are not supported; convert them first, e.g. x.to(DType.INT64)",
                () -> F.einsum("i,i", Tensor.of(new boolean[] {true}, 1), Tensor.of(new boolean[] {false}, 1)));
    }

    private static void assertMessage(Class<? extends KilnException> type, String expected, Executable call) {
        KilnException e = assertThrows(type, call);
        assertEquals(expected, e.getMessage());
    }

    // ================================================================ the naive reference

    private static void checkAgainstNaive(String equation, Tensor[] operands, double[][] values, DType dtype) {
        int[][] shapes = new int[operands.length][];
        for (int k = 0; k < operands.length; k++) shapes[k] = operands[k].shape().dims();
        Naive expected = Naive.einsum(equation, values, shapes);
        Tensor actual = F.einsum(equation, operands);
        String what = "einsum(\"" + equation + "\") of " + dtype + " " + Arrays.deepToString(shapes);
        assertEquals(dtype, actual.dtype(), what);
        assertEquals(Shape.of(expected.shape), actual.shape(), what);
        double eps = switch (dtype) {
            case FLOAT16 -> 0x1p-11;
            case BFLOAT16 -> 0x1p-8;
            case FLOAT32 -> 0x1p-24;
            case FLOAT64 -> 0x1p-53;
            default -> 0;
        };
        double[] got = TestTensors.values(actual);
        for (int i = 0; i < got.length; i++) {
            // Each pairwise step rounds once to the dtype and sums at most `terms` values.
            double tol = eps * (expected.terms + 4.0 * operands.length) * expected.magnitude[i];
            double want = TestTensors.roundTo(dtype, expected.values[i]);
            if (!(Math.abs(got[i] - want) <= tol + eps * Math.abs(want))) {
                fail(what + ": element " + i + " is " + got[i] + ", expected " + want + " (tolerance " + tol + ")");
            }
        }
    }

    /** Values exact in {@code dtype}: small integers for integer types, [-1, 1) rounded for floats. */
    private static double[] randomValues(DType dtype, long n, long seed) {
        if (!dtype.isFloatingPoint()) {
            SplittableRandom r = new SplittableRandom(seed);
            double[] v = new double[(int) n];
            for (int i = 0; i < v.length; i++) v[i] = r.nextInt(-3, 4);
            return v;
        }
        double[] v = TestTensors.randomData(n, seed, 1.0, false);
        for (int i = 0; i < v.length; i++) v[i] = TestTensors.roundTo(dtype, v[i]);
        return v;
    }

    /** The reference: every label assignment, products in double. */
    record Naive(int[] shape, double[] values, double[] magnitude, long terms) {

        static Naive einsum(String equation, double[][] values, int[][] shapes) {
            String eq = equation.replace(" ", "");
            String[] sides = eq.split("->", -1);
            String[] terms = sides[0].split(",", -1);
            // Axis names: a letter, or "#j" for the j-th (right-aligned) ellipsis dimension.
            int ellipsisRank = 0;
            for (int k = 0; k < terms.length; k++) {
                if (terms[k].contains("...")) ellipsisRank = Math.max(ellipsisRank, shapes[k].length - (terms[k].length() - 3));
            }
            List<List<String>> axes = new ArrayList<>();
            Map<String, Integer> size = new LinkedHashMap<>();
            Map<String, Integer> count = new LinkedHashMap<>();
            for (int k = 0; k < terms.length; k++) {
                List<String> names = axisNames(terms[k], shapes[k].length, ellipsisRank);
                axes.add(names);
                for (int d = 0; d < names.size(); d++) {
                    String a = names.get(d);
                    count.merge(a, 1, Integer::sum);
                    // Broadcasting: a size other than 1 wins.
                    if (!size.containsKey(a) || size.get(a) == 1) size.put(a, shapes[k][d]);
                }
            }
            List<String> out;
            if (sides.length == 2) {
                out = axisNames(sides[1], -1, ellipsisRank);
            } else {
                out = new ArrayList<>();
                for (int j = 0; j < ellipsisRank; j++) out.add("#" + j);
                new TreeSet<>(count.keySet()).stream().filter(a -> !a.startsWith("#") && count.get(a) == 1).forEach(out::add);
            }
            for (int j = 0; j < ellipsisRank; j++) size.putIfAbsent("#" + j, 1);
            List<String> all = new ArrayList<>(size.keySet());
            int[] outShape = out.stream().mapToInt(size::get).toArray();
            int outCount = 1;
            for (int s : outShape) outCount *= s;
            double[] result = new double[outCount], magnitude = new double[outCount];
            int[] sizes = all.stream().mapToInt(size::get).toArray();
            long assignments = 1;
            for (int s : sizes) assignments *= s;
            Map<String, Integer> at = new LinkedHashMap<>();
            for (long flat = 0; flat < assignments; flat++) {
                long rest = flat;
                for (int i = all.size() - 1; i >= 0; i--) {
                    at.put(all.get(i), (int) (rest % sizes[i]));
                    rest /= sizes[i];
                }
                double product = 1;
                for (int k = 0; k < terms.length; k++) {
                    long index = 0;
                    for (int d = 0; d < shapes[k].length; d++) {
                        int coordinate = shapes[k][d] == 1 ? 0 : at.get(axes.get(k).get(d));
                        index = index * shapes[k][d] + coordinate;
                    }
                    product *= values[k][(int) index];
                }
                int o = 0;
                for (int i = 0; i < out.size(); i++) o = o * outShape[i] + at.get(out.get(i));
                result[o] += product;
                magnitude[o] += Math.abs(product);
            }
            return new Naive(outShape, result, magnitude, outCount == 0 ? 0 : assignments / outCount);
        }

        /** Axis names of a term; an operand's ellipsis covers its remaining dimensions, the output's covers all. */
        private static List<String> axisNames(String term, int rank, int ellipsisRank) {
            List<String> names = new ArrayList<>();
            int e = term.indexOf("...");
            String letters = term.replace("...", "");
            int covered = e < 0 ? 0 : rank < 0 ? ellipsisRank : rank - letters.length();
            for (int i = 0; i < term.length(); i++) {
                if (i == e) {
                    for (int j = ellipsisRank - covered; j < ellipsisRank; j++) names.add("#" + j);
                    i += 2;
                } else {
                    names.add(String.valueOf(term.charAt(i)));
                }
            }
            return names;
        }
    }
}
