package dev.kiln.nn;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Equations over more than 8 letters (any of the 52) against a naive double einsum; the
 * real limit is the rank of an intermediate, reported with the live labels.
 */
class EinsumManyLabelsTest {

    /** Sums the products over every assignment of every label (explicit output, no ellipsis). */
    private static double[] naive(String equation, Map<Character, Integer> sizes, double[][] values) {
        String[] io = equation.split("->");
        String[] terms = io[0].split(",");
        String labels = sizes.keySet().stream().map(String::valueOf).reduce("", String::concat);
        String out = io[1];
        int outSize = 1;
        for (char c : out.toCharArray()) outSize *= sizes.get(c);
        double[] result = new double[outSize];
        int[] at = new int[labels.length()];
        while (true) {
            double p = 1;
            for (int k = 0; k < terms.length; k++) p *= values[k][flat(terms[k], labels, at, sizes)];
            result[flat(out, labels, at, sizes)] += p;
            int i = 0;
            while (i < at.length && ++at[i] == sizes.get(labels.charAt(i))) at[i++] = 0;
            if (i == at.length) return result;
        }
    }

    private static int flat(String term, String labels, int[] at, Map<Character, Integer> sizes) {
        int index = 0;
        for (char c : term.toCharArray()) index = index * sizes.get(c) + at[labels.indexOf(c)];
        return index;
    }

    private static void check(String equation, Map<Character, Integer> sizes, long seed) {
        String[] terms = equation.split("->")[0].split(",");
        Tensor[] operands = new Tensor[terms.length];
        double[][] values = new double[terms.length][];
        for (int k = 0; k < terms.length; k++) {
            int[] shape = terms[k].chars().map(c -> sizes.get((char) c)).toArray();
            values[k] = TestTensors.randomData(Shape.of(shape).numel(), seed + k, 1, false);
            operands[k] = TestTensors.tensor(values[k], DType.FLOAT64, shape);
        }
        double[] expected = naive(equation, sizes, values);
        double[] actual = F.einsum(equation, operands).toDoubleArray();
        assertEquals(expected.length, actual.length, equation);
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Math.abs(expected[i] - actual[i]) <= 1e-12 * (1 + Math.abs(expected[i])),
                    equation + " element " + i + ": expected " + expected[i] + " got " + actual[i]);
        }
    }

    private static Map<Character, Integer> sizes(String labels) {
        Map<Character, Integer> m = new HashMap<>();
        for (int i = 0; i < labels.length(); i++) m.put(labels.charAt(i), 2 + i % 2);
        return m;
    }

    @Test
    void tenLabelsMatchTheNaiveEinsum() {
        check("abcde,befgh,hij->acfij", sizes("abcdefghij"), 1);
        check("abcde,efghi,ij->abcdfghj", sizes("abcdefghij"), 2);
    }

    @Test
    void upperAndLowerCaseLabelsTogether() {
        check("aAbB,BcCd,dDeE,EzZ->AcDzZ", sizes("aAbBcCdDeEzZ"), 3);
    }

    @Test
    void tooManyLiveLabelsAreReportedWithTheEquation() {
        Tensor a = Tensor.ones(2, 2, 2, 2, 2), b = Tensor.ones(2, 2, 2, 2, 2), c = Tensor.ones(2, 2);
        KilnShapeException e = assertThrows(KilnShapeException.class, () -> F.einsum("abcde,fghij,aj->abcdfghi", a, b, c));
        assertEquals("einsum: 'abcde,fghij,aj->abcdfghi': contracting operand 1 with operand 0 leaves 9 dimensions (abcdfghij)"
                + " that later operands or the output need, above the maximum tensor rank 8; operands are contracted left to"
                + " right, so reorder them to sum labels sooner, or split the einsum", e.getMessage());
        // The same contraction in an order that keeps at most 8 labels live works.
        check("abcde,aj,fghij->abcdfghi", sizes("abcdefghij"), 4);
    }
}
