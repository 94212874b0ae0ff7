package dev.kiln.ops;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.DoubleRange;
import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The double references of erf and GELU (tanh form) against exact values. */
class SpecialFunctionsTest {

    private static final MathContext MC = new MathContext(60, RoundingMode.HALF_EVEN);
    private static final BigDecimal PI = new BigDecimal("3.14159265358979323846264338327950288419716939937510582097494");

    @Test
    void erfKeepsTheSignOfZero() {
        assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(SpecialFunctions.erf(-0.0)));
        assertEquals(Double.doubleToRawLongBits(0.0), Double.doubleToRawLongBits(SpecialFunctions.erf(0.0)));
        assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(UnaryFn.ERF.apply(-0.0)));
        // Odd everywhere, tiny arguments included.
        assertEquals(-SpecialFunctions.erf(Double.MIN_VALUE), SpecialFunctions.erf(-Double.MIN_VALUE));
    }

    /** e^a for a >= 0 by its Taylor series, to 60 digits. */
    private static BigDecimal exp(BigDecimal a) {
        BigDecimal sum = BigDecimal.ONE, term = BigDecimal.ONE;
        for (int n = 1; term.compareTo(sum.ulp()) > 0 || n < 10; n++) {
            term = term.multiply(a, MC).divide(BigDecimal.valueOf(n), MC);
            sum = sum.add(term, MC);
        }
        return sum;
    }

    /** x/2 (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi)(x + 0.044715 x^3), all in 60 digits. */
    private static double geluTanhExact(double xd) {
        BigDecimal x = new BigDecimal(xd);
        BigDecimal inner = x.add(new BigDecimal("0.044715").multiply(x.pow(3), MC), MC);
        BigDecimal twoU = BigDecimal.TWO.divide(PI, MC).sqrt(MC).multiply(inner, MC).multiply(BigDecimal.TWO, MC);
        // 1 + e^(-2u) with the series run on a non-negative argument.
        BigDecimal denominator = twoU.signum() <= 0
                ? BigDecimal.ONE.add(exp(twoU.negate()), MC)
                : BigDecimal.ONE.add(BigDecimal.ONE.divide(exp(twoU), MC), MC);
        return x.divide(denominator, MC).doubleValue();
    }

    private static void assertRelative(double expected, double actual, double tolerance, String what) {
        assertTrue(Math.abs(actual - expected) <= tolerance * Math.abs(expected),
                what + ": expected " + expected + " got " + actual);
    }

    @Test
    void geluTanhIsAccurateInTheFarNegativeTail() {
        double exact = geluTanhExact(-10);
        assertTrue(exact < -1e-37 && exact > -2e-37, "exact gelu_tanh(-10) = " + exact);
        assertRelative(exact, UnaryFn.GELU_TANH.apply(-10), 1e-13, "gelu_tanh(-10)");
        assertRelative(geluTanhExact(-25), SpecialFunctions.geluTanh(-25), 1e-12, "gelu_tanh(-25)");
    }

    @Property(tries = 150)
    void geluTanhMatchesTheExactValue(@ForAll @DoubleRange(min = -26, max = 12) double x) {
        // Sensitivity to the rounding of u grows like |u|, about 900 at -26: a few 1e-13 relative.
        // Below about -21 the result is subnormal: e^-2u is rounded to the subnormal grid, then
        // multiplied by x, so a few |x| subnormal steps come on top.
        double expected = geluTanhExact(x), actual = SpecialFunctions.geluTanh(x);
        assertTrue(Math.abs(actual - expected) <= 2e-13 * Math.abs(expected) + 4 * Math.abs(x) * Double.MIN_VALUE,
                "gelu_tanh(" + x + "): expected " + expected + " got " + actual);
    }

    @Test
    void geluTanhIsAccurateWhereItsResultIsSubnormal() {
        // The case a random run found: 8 subnormal steps off, 3e-13 relative.
        double x = -21.23, expected = geluTanhExact(x);
        assertTrue(Math.abs(expected) < Double.MIN_NORMAL, "subnormal: " + expected);
        assertTrue(Math.abs(SpecialFunctions.geluTanh(x) - expected) <= 4 * Math.abs(x) * Double.MIN_VALUE);
    }

    @Test
    void geluTanhKeepsItsLimits() {
        assertEquals(Double.POSITIVE_INFINITY, SpecialFunctions.geluTanh(Double.POSITIVE_INFINITY));
        assertTrue(Double.isNaN(SpecialFunctions.geluTanh(Double.NEGATIVE_INFINITY)));
        assertTrue(Double.isNaN(SpecialFunctions.geluTanh(Double.NaN)));
        assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(SpecialFunctions.geluTanh(-1e200)));
        assertEquals(0.0, SpecialFunctions.geluTanh(0.0));
    }
}
