package dev.kiln.npu.kernels.serving;

import dev.kiln.nn.Serving;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static dev.kiln.testing.TestTensors.roundTo;
import static dev.kiln.testing.TestTensors.values;
import static org.junit.jupiter.api.Assertions.assertEquals;

class ReshapeAndCacheProperties {

    @Provide
    Arbitrary<DType> dtypes() { return Arbitraries.of(DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16, DType.FLOAT64); }

    @Property(tries = 100)
    void writesExactlyTheMappedSlotsAndNothingElse(@ForAll long seed, @ForAll @IntRange(min = 0, max = 9) int tokens,
                                                   @ForAll @IntRange(min = 1, max = 3) int kvHeads,
                                                   @ForAll @IntRange(min = 1, max = 40) int dim,
                                                   @ForAll @IntRange(min = 1, max = 5) int blockSize,
                                                   @ForAll("dtypes") DType keyType, @ForAll("dtypes") DType cacheType,
                                                   @ForAll Presentation keyPresentation, @ForAll Presentation cachePresentation,
                                                   @ForAll boolean int32Slots) {
        Random r = new Random(seed);
        int blocks = 1 + (tokens + blockSize - 1) / blockSize + r.nextInt(2), capacity = blocks * blockSize, row = kvHeads * dim;
        // Distinct slots, some tokens skipped with -1, and occasionally a slot repeated (the later token wins).
        List<Integer> free = new ArrayList<>();
        for (int s = 0; s < capacity; s++) free.add(s);
        Collections.shuffle(free, r);
        long[] slots = new long[tokens];
        for (int t = 0; t < tokens; t++) {
            slots[t] = r.nextInt(4) == 0 ? -1 : t > 0 && r.nextInt(6) == 0 ? Math.max(slots[t - 1], 0) : free.get(t);
        }
        double[] k = PagedAttentionProperties.random(r, tokens * row), v = PagedAttentionProperties.random(r, tokens * row);
        double[] kc0 = PagedAttentionProperties.random(r, capacity * row), vc0 = PagedAttentionProperties.random(r, capacity * row);
        kc0[0] = Double.NaN;
        Tensor key = TestTensors.tensor(k, keyType, keyPresentation, tokens, kvHeads, dim);
        Tensor value = TestTensors.tensor(v, keyType, keyPresentation, tokens, kvHeads, dim);
        Tensor keyCache = TestTensors.tensor(kc0, cacheType, cachePresentation, blocks, blockSize, kvHeads, dim);
        Tensor valueCache = TestTensors.tensor(vc0, cacheType, cachePresentation, blocks, blockSize, kvHeads, dim);
        double[] expectedKeys = values(keyCache), expectedValues = values(valueCache), kr = values(key), vr = values(value);
        for (int t = 0; t < tokens; t++) {
            if (slots[t] < 0) continue;
            for (int i = 0; i < row; i++) {
                expectedKeys[(int) slots[t] * row + i] = roundTo(cacheType, kr[t * row + i]);
                expectedValues[(int) slots[t] * row + i] = roundTo(cacheType, vr[t * row + i]);
            }
        }
        Tensor slotTensor = int32Slots ? Tensor.of(toInts(slots), tokens) : Tensor.of(slots, tokens);
        int keyVersion = keyCache.storage().version(), valueVersion = valueCache.storage().version();
        Serving.reshapeAndCache(key, value, keyCache, valueCache, slotTensor);
        assertBitsEqual(expectedKeys, values(keyCache));
        assertBitsEqual(expectedValues, values(valueCache));
        // Marked as written, so a compiled program re-reads what it derived from the caches (packed panels).
        assertEquals(keyVersion + 1, keyCache.storage().version());
        assertEquals(valueVersion + 1, valueCache.storage().version());
    }

    static int[] toInts(long[] v) {
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) out[i] = (int) v[i];
        return out;
    }

    static void assertBitsEqual(double[] expected, double[] actual) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            if (Double.compare(expected[i], actual[i]) != 0) {
                throw new AssertionError("cache element " + i + " is " + actual[i] + ", expected " + expected[i]);
            }
        }
    }
}
