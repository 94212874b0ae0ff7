package dev.kiln.tensor;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.math.BigDecimal;
import java.math.BigInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@link DType#holds} against exact arithmetic: the ranges PyTorch checks a fill value against. */
class DTypeHoldsProperties {

    /** The largest finite magnitude of a floating type, or the [lowest, highest] range of an integer type, exactly. */
    private static boolean reference(DType t, double v) {
        if (t == DType.BOOL || t == DType.FLOAT64) return true;
        if (Double.isNaN(v)) return t.isFloatingPoint();
        if (Double.isInfinite(v)) return t.isFloatingPoint();
        BigDecimal x = new BigDecimal(v);
        if (t.isFloatingPoint()) {
            BigDecimal max = new BigDecimal(switch (t) {
                case FLOAT16 -> 65504.0;
                case BFLOAT16 -> 0x1.fep127;
                default -> Float.MAX_VALUE;
            });
            return x.abs().compareTo(max) <= 0;
        }
        int bits = 8 * t.byteSize();
        BigInteger lowest = t.isUnsigned() ? BigInteger.ZERO : BigInteger.ONE.shiftLeft(bits - 1).negate();
        BigInteger highest = t.isUnsigned() ? BigInteger.ONE.shiftLeft(bits).subtract(BigInteger.ONE)
                : BigInteger.ONE.shiftLeft(bits - 1).subtract(BigInteger.ONE);
        return x.compareTo(new BigDecimal(lowest)) >= 0 && x.compareTo(new BigDecimal(highest)) <= 0;
    }

    @Provide
    Arbitrary<Double> values() {
        // Around every type's bounds, and anywhere.
        Arbitrary<Double> bound = Arbitraries.of(0.0, 127.0, 128.0, 255.0, 256.0, 32767.0, 32768.0, 65504.0, 65505.0, 65535.0, 65536.0,
                0x1p31, 0x1p32, 0x1p63, 0x1p64, 0x1.fep127, (double) Float.MAX_VALUE);
        Arbitrary<Double> near = bound.flatMap(b -> Arbitraries.integers().between(-3, 3).map(k -> {
            double v = b;
            for (int i = 0; i < Math.abs(k); i++) v = k > 0 ? Math.nextUp(v) : Math.nextDown(v);
            return v;
        })).flatMap(v -> Arbitraries.of(v, -v, v - 0.5, -v + 0.5, v + 0.5));
        return Arbitraries.oneOf(near, Arbitraries.doubles(), Arbitraries.of(Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY));
    }

    @Property
    void aValueFitsATypeExactlyWhenItLiesWithinTheTypesRange(@ForAll DType type, @ForAll("values") double value) {
        assertEquals(reference(type, value), type.holds(value), type + " " + value);
    }
}
