package dev.kiln.npu.kernels;

import dev.kiln.nn.F;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Errors users can act on, for the reduction and normalisation ops: type, message (op, shapes, dimension). */
class ReductionErrorsTest {
    private static final Tensor M = Tensor.of(new float[6], 2, 3);

    private static void expect(Class<? extends KilnException> type, String message, Executable call) {
        assertEquals(message, assertThrows(type, call).getMessage());
    }

    @Test
    void meanOfIntegersAsksForACast() {
        expect(KilnTypeException.class, "mean: could not infer output dtype: input dtype must be floating point, got int32;"
                + " cast it first, e.g. x.to(DType.FLOAT32).mean(...)", () -> Tensor.of(new int[] {1, 2}, 2).mean());
    }

    @Test
    void dimensionsOutOfRange() {
        expect(KilnShapeException.class, "sum: dimension 2 is out of range for shape [2,3] (expected in [-2, 1])", () -> M.sum(2));
        expect(KilnShapeException.class, "max: dimension -3 is out of range for shape [2,3] (expected in [-2, 1])",
                () -> M.max(new int[] {0, -3}, false));
        expect(KilnShapeException.class, "sum: dimension -1 appears more than once in [1, -1]", () -> M.sum(new int[] {1, -1}, false));
        expect(KilnShapeException.class, "argmax: dimension 5 is out of range for shape [2,3] (expected in [-2, 1])",
                () -> M.argmax(5, false));
        expect(KilnShapeException.class, "cumsum: dimension -3 is out of range for shape [2,3] (expected in [-2, 1])",
                () -> M.cumsum(-3));
        expect(KilnShapeException.class, "softmax: dimension 2 is out of range for shape [2,3] (expected in [-2, 1])",
                () -> M.softmax(2));
        expect(KilnShapeException.class, "log_softmax: dimension 2 is out of range for shape [2,3] (expected in [-2, 1])",
                () -> M.logSoftmax(2));
        expect(KilnShapeException.class, "topk: dimension 2 is out of range for shape [2,3] (expected in [-2, 1])",
                () -> M.topk(1, 2, true, true));
    }

    @Test
    void argReduceOverAnEmptyDimension() {
        Tensor e = Tensor.of(new float[0], 3, 0);
        expect(KilnShapeException.class, "argmax: cannot reduce dimension 1 of size 0 in shape [3,0]", () -> e.argmax(1, false));
        expect(KilnShapeException.class, "argmin: cannot reduce dimension 1 of size 0 in shape [3,0]", () -> e.argmin(-1, true));
    }

    @Test
    void topkKOutOfRange() {
        expect(KilnShapeException.class, "topk: k (4) is out of range for dimension 1 of size 3 in shape [2,3]", () -> M.topk(4));
        expect(KilnShapeException.class, "topk: k (-1) is out of range for dimension 0 of size 2 in shape [2,3]",
                () -> M.topk(-1, 0, true, true));
    }

    @Test
    void normalisationParameterShapes() {
        expect(KilnShapeException.class, "layer_norm: shapes [3] and [4] do not broadcast: dimension -1 is 3 vs 4",
                () -> F.layerNorm(M, new int[] {3}, Tensor.of(new float[4], 4), null, 1e-5));
        expect(KilnShapeException.class, "layer_norm: bias of shape [2,3] does not match the normalized shape [3] of input [2,3]",
                () -> F.layerNorm(M, new int[] {3}, Tensor.of(new float[3], 3), Tensor.of(new float[6], 2, 3), 1e-5));
        expect(KilnShapeException.class, "layer_norm: weight of shape [2,3] does not match the normalized shape [3] of input [2,3]",
                () -> F.layerNorm(M, new int[] {3}, Tensor.of(new float[6], 2, 3), null, 1e-5));
        expect(KilnShapeException.class, "layer_norm: normalized_shape [4] does not match the trailing dimensions of input [2,3]",
                () -> F.layerNorm(M, new int[] {4}, null, null, 1e-5));
        expect(KilnShapeException.class, "rms_norm: weight of shape [2,3] does not match the normalized shape [3] of input [2,3]",
                () -> F.rmsNorm(M, new int[] {3}, Tensor.of(new float[6], 2, 3), 1e-6));
        expect(KilnShapeException.class, "rms_norm: axis 2 is out of range for shape [2,3]", () -> F.rmsNormAxis(M, 2, null, 1e-6));
    }

    @Test
    void floatOnlyOps() {
        Tensor i = Tensor.of(new int[] {1, 2}, 2);
        expect(KilnTypeException.class, "softmax: expected a floating-point tensor, got int32[2]", () -> i.softmax(0));
        expect(KilnTypeException.class, "layer_norm: expected a floating-point tensor, got int32[2]",
                () -> F.layerNorm(i, new int[] {2}, null, null, 1e-5));
        expect(KilnTypeException.class, "rms_norm: expected a floating-point tensor, got int32[2]",
                () -> F.rmsNorm(i, new int[] {2}, null, 1e-5));
    }
}
