package dev.kiln.tensor;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ShapeTest {

    @Test
    void broadcastErrorNamesOpShapesAndDimension() {
        var e = assertThrows(KilnShapeException.class, () -> Shape.broadcast("add", Shape.of(2, 3), Shape.of(4)));
        assertEquals("add: shapes [2,3] and [4] do not broadcast: dimension -1 is 3 vs 4", e.getMessage());
    }

    @Test
    void broadcastAlignsTrailingDimensions() {
        assertEquals(Shape.of(5, 2, 3), Shape.broadcast("add", Shape.of(5, 1, 3), Shape.of(2, 1)));
        assertEquals(Shape.of(0, 3), Shape.broadcast("add", Shape.of(0, 1), Shape.of(3)));
    }

    @Test
    void rankAboveEightIsRejected() {
        assertThrows(KilnShapeException.class, () -> Shape.of(new int[9]));
    }

    @Property
    void broadcastIsCommutative(@ForAll @Size(max = 4) List<@IntRange(min = 1, max = 3) Integer> a,
                                @ForAll @Size(max = 4) List<@IntRange(min = 1, max = 3) Integer> b) {
        Shape sa = Shape.of(a.stream().mapToInt(Integer::intValue).toArray());
        Shape sb = Shape.of(b.stream().mapToInt(Integer::intValue).toArray());
        Shape ab = null, ba = null;
        try { ab = Shape.broadcast("t", sa, sb); } catch (KilnShapeException ignored) { }
        try { ba = Shape.broadcast("t", sb, sa); } catch (KilnShapeException ignored) { }
        assertEquals(ab, ba);
    }

    @Test
    void dtypePromotionFollowsPyTorch() {
        assertEquals(DType.FLOAT32, DType.promote(DType.INT64, DType.FLOAT32));
        assertEquals(DType.INT64, DType.promote(DType.INT32, DType.INT64));
        assertEquals(DType.FLOAT32, DType.promote(DType.FLOAT16, DType.BFLOAT16));
        assertEquals(DType.INT32, DType.promote(DType.BOOL, DType.INT32));
        assertEquals(DType.FLOAT64, DType.promote(DType.FLOAT32, DType.FLOAT64));
    }
}
