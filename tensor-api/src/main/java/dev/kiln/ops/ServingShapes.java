package dev.kiln.ops;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Shape;

/**
 * Shape and dtype rules of the serving attention ops ({@link Op.PagedAttention},
 * {@link Op.SlidingWindowDecode}, and {@code dev.kiln.nn.Serving}'s eager-only ops), on
 * metadata alone so that tracing checks them as eager calls do. Messages name the op by
 * its {@code dev.kiln.nn.Serving} method, the operand and the offending dimension.
 */
public final class ServingShapes {
    private ServingShapes() {}

    /** Query and key/value caches: floating point, of the documented ranks, keys and values shaped alike. */
    public static void attentionOperands(String op, TensorMeta query, String queryLayout, String keyName, TensorMeta keys,
                                         String valueName, TensorMeta values, String cacheLayout) {
        floating(op, "query", query);
        floating(op, keyName, keys);
        floating(op, valueName, values);
        rank(op, "query", query, 3, queryLayout);
        rank(op, keyName, keys, 4, cacheLayout);
        sameShape(op, valueName, values, keyName, keys);
    }

    public static void floating(String op, String name, TensorMeta t) {
        if (!t.dtype().isFloatingPoint()) {
            throw new KilnTypeException(op + ": " + name + " must be a floating-point tensor, got " + t.dtype() + t.shape());
        }
    }

    public static void integral(String op, String name, TensorMeta t) {
        if (t.dtype() != DType.INT32 && t.dtype() != DType.INT64) {
            throw new KilnTypeException(op + ": " + name + " must be an int32 or int64 tensor, got " + t.dtype() + t.shape());
        }
    }

    public static void rank(String op, String name, TensorMeta t, int rank, String expected) {
        if (t.shape().rank() != rank) throw new KilnShapeException(op + ": " + name + " must be " + expected + ", got " + t.shape());
    }

    public static void sameShape(String op, String name, TensorMeta t, String otherName, TensorMeta other) {
        if (!t.shape().equals(other.shape())) {
            throw new KilnShapeException(op + ": " + name + " " + t.shape() + " must have the shape of " + otherName + " " + other.shape());
        }
    }

    public static void vector(String op, String name, TensorMeta t, int length, String what) {
        integral(op, name, t);
        if (!t.shape().equals(Shape.of(length))) {
            throw new KilnShapeException(op + ": " + name + " must be [" + length + "] (" + what + "), got " + t.shape());
        }
    }

    /** Head size and head counts of query [., H, D] against a cache [., ., Hkv, D]. */
    public static void heads(String op, TensorMeta query, TensorMeta cache) {
        Shape q = query.shape(), c = cache.shape();
        int h = q.dim(1), hkv = c.dim(2);
        if (q.dim(2) != c.dim(3)) {
            throw new KilnShapeException(op + ": the head size of query " + q + " (dimension 2) differs from the cache's "
                    + c + " (dimension 3)");
        }
        if (hkv == 0 || h % hkv != 0) {
            throw new KilnShapeException(op + ": the query's " + h + " heads (dimension 1 of " + q
                    + ") are not a multiple of the cache's " + hkv + " KV heads (dimension 2 of " + c + ")");
        }
    }

    public static void params(String op, double scale, int slidingWindow, double softcap) {
        if (!Double.isFinite(scale)) throw new KilnException(op + ": scale must be finite, got " + scale);
        if (slidingWindow < 0) throw new KilnException(op + ": slidingWindow must be 0 (none) or positive, got " + slidingWindow);
        if (!(softcap >= 0) || Double.isInfinite(softcap)) {
            throw new KilnException(op + ": softcap must be 0 (none) or a positive finite value, got " + softcap);
        }
    }
}
