package dev.kiln.ops;

/** Double-precision special functions the JDK lacks; the reference semantics of erf and GELU. */
public final class SpecialFunctions {
    private static final double TWO_OVER_SQRT_PI = 1.1283791670955126;
    private static final double INV_SQRT_PI = 0.5641895835477563;

    private SpecialFunctions() {}

    /** erf to within a few ulp: Taylor series near zero, a continued fraction for erfc beyond. */
    public static double erf(double x) {
        // erf is odd: ±0 maps to itself (the series below would turn -0 into +0).
        if (Double.isNaN(x) || x == 0) return x;
        double a = Math.abs(x);
        if (a < 2.5) {
            double x2 = x * x, term = x, sum = x;
            for (int n = 1; n < 200; n++) {
                term *= -x2 / n;
                double t = term / (2 * n + 1);
                sum += t;
                if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
            }
            return TWO_OVER_SQRT_PI * sum;
        }
        double r = 1.0 - erfcLarge(a);
        return x < 0 ? -r : r;
    }

    /** erfc for x >= 2.5 by the Lentz evaluation of its continued fraction. */
    private static double erfcLarge(double x) {
        if (x > 27) return 0.0;
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
        double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int n = 1; n < 500; n++) {
            double an = n * 0.5;
            d = x + an * d;
            d = Math.abs(d) < tiny ? tiny : d;
            c = x + an / c;
            c = Math.abs(c) < tiny ? tiny : c;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.abs(delta - 1) < 1e-16) break;
        }
        return Math.exp(-x * x) * INV_SQRT_PI / f;
    }

    public static double sigmoid(double x) {
        return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    }

    /** x Phi(x); in the negative tail as x erfc(|x| / sqrt 2) / 2, where 1 + erf would cancel (1e-4 relative at x = -7). */
    public static double geluErf(double x) {
        double z = x * 0.7071067811865476;
        if (z <= -2.5) return 0.5 * x * erfcLarge(-z);
        return 0.5 * x * (1 + erf(z));
    }

    /**
     * x/2 (1 + tanh(u)) with u = sqrt(2/pi)(x + 0.044715 x^3), evaluated as x sigmoid(2u):
     * the same value, but for negative x the tail e^(2u) / (1 + e^(2u)) is formed directly
     * instead of as 1 + tanh(u), which cancels to 0 long before the result underflows.
     */
    public static double geluTanh(double x) {
        return x * sigmoid(1.5957691216057308 * (x + 0.044715 * x * x * x));
    }

    /** log(1 + exp(x)) without overflow, as PyTorch's softplus with beta 1 and threshold 20. */
    public static double softplus(double x) {
        return x > 20 ? x : Math.log1p(Math.exp(x));
    }
}
