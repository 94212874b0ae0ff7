package dev.kiln.ops;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class GeluReferenceTest {
    /** x erfc(-x / sqrt 2) / 2, evaluated with Python's math.erfc (no cancellation). */
    @Test
    void theNegativeTailIsAccurateToDoublePrecision() {
        double[][] cases = {
                {-7.141931533813477, -3.286304026731165e-12},
                {-6.0, -5.919525870226207e-09},
                {-10.0, -7.619853024160593e-23},
        };
        for (double[] c : cases) assertEquals(c[1], SpecialFunctions.geluErf(c[0]), 1e-13 * Math.abs(c[1]), "gelu(" + c[0] + ")");
    }

    @Test
    void bothFormsMeetWhereTheTailBegins() {
        double edge = -2.5 * Math.sqrt(2);
        double below = SpecialFunctions.geluErf(Math.nextDown(edge)), above = SpecialFunctions.geluErf(Math.nextUp(edge));
        assertEquals(below, above, 1e-12 * Math.abs(below));
        assertEquals(0.0, SpecialFunctions.geluErf(-60), 0.0);
        assertEquals(2.99595030590511, SpecialFunctions.geluErf(3.0), 4e-15);
    }
}
