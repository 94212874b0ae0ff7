package dev.kiln.npu.kernels;

import dev.kiln.npu.StridedIndex;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The walker kernels use for outer dimensions instead of a division chain per position, against the flat-index lookup. */
class OdometerTest {
    record Walk(int[] sizes, long[] aStrides, long aBase, long[] bStrides, long bBase, long start) {
        long positions() {
            long n = 1;
            for (int s : sizes) n *= s;
            return n;
        }
    }

    @Provide
    Arbitrary<Walk> walks() {
        return Arbitraries.integers().between(0, 5).flatMap(rank -> {
            Arbitrary<int[]> sizes = Arbitraries.integers().between(1, 5).array(int[].class).ofSize(rank);
            // Strides of views: negative (flips), zero (broadcasts) and larger than the dimension below (slices).
            Arbitrary<long[]> strides = Arbitraries.longs().between(-40, 40).array(long[].class).ofSize(rank);
            Arbitrary<Long> bases = Arbitraries.longs().between(0, 10_000);
            return Combinators.combine(sizes, strides, bases, strides, bases, Arbitraries.longs().between(0, 1L << 20))
                    .as(Walk::new);
        });
    }

    @Property(tries = 300)
    void walkingFromAnyPositionMatchesLookingEachPositionUp(@ForAll("walks") Walk w) {
        long n = w.positions(), from = w.start() % n;
        Odometer o = new Odometer(w.sizes(), w.aStrides(), w.aBase(), w.bStrides(), w.bBase()).seek(from);
        // Twice round, so the wrap from the last position to the first is checked too.
        for (long step = 0; step < 2 * n; step++) {
            long p = (from + step) % n;
            assertEquals(StridedIndex.offset(w.sizes(), w.aStrides(), w.aBase(), p), o.a(), () -> "a at position " + p + " of " + List.of(w));
            assertEquals(StridedIndex.offset(w.sizes(), w.bStrides(), w.bBase(), p), o.b(), () -> "b at position " + p);
            o.next();
        }
    }
}
