package dev.kiln.ops;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;

/** What shape inference knows of a value: its dtype and shape, no data. */
public record TensorMeta(DType dtype, Shape shape) {
    @Override
    public String toString() { return dtype + shape.toString(); }
}
