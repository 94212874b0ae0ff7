package dev.kiln.ir;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class SizeTemplateTest {
    private static final long[] BASE = {6, 10};

    /** A text with sizes that are polynomials of degree 2 in m and k, and a float that is not a size. */
    private static final BiFunction<Long, Long, String> TEXT = (m, k) ->
            "reshape [" + m * 8 + ",4] mm " + (m * k + 2) + " tile 7 sq " + k * k + " off " + (m - 1) + " eps 1.0E-5 bits 0x3f800000";

    private static SizeTemplate fitted() {
        return SizeTemplate.fit(SizeTemplate.samplePoints(BASE).stream().map(p -> TEXT.apply(p[0], p[1])).toList(), BASE);
    }

    @Property(tries = 50)
    void rendersTheTextAtAnySizes(@ForAll @IntRange(min = 1, max = 5000) int m, @ForAll @IntRange(min = 1, max = 5000) int k) {
        assertEquals(TEXT.apply((long) m, (long) k), fitted().render(new long[] {m, k}));
    }

    @Test
    void writesSizesAsPolynomialsInTheSymbols() {
        assertEquals("reshape [8*m,4] mm m*k+2 tile 7 sq k*k off m-1 eps 1.0E-5 bits 0x3f800000",
                fitted().renderSymbolic(List.of("m", "k")));
        assertEquals(4, fitted().symbolicIntegers());
    }

    @Test
    void textsThatDifferOtherThanInSizesOrByRoundingDoNotFit() {
        List<long[]> points = SizeTemplate.samplePoints(BASE);
        assertNull(SizeTemplate.fit(points.stream().map(p -> p[0] == 7 ? "a " + p[0] : "b " + p[0]).toList(), BASE));
        // m / 2 rounds: 3, 3, 4, 4 at m = 6, 7, 9, 8 is no polynomial of degree 2.
        assertNull(SizeTemplate.fit(points.stream().map(p -> "half " + p[0] / 2 + " k " + p[1]).toList(), BASE));
        assertNull(fitted().render(new long[] {0, 1}), "m - 1 would be negative");
    }
}
