package dev.kiln;

import dev.kiln.tensor.Tensor;

/**
 * A function of 4 tensors returning {@code R}: a {@link Tensor}, a {@code Tensor[]} or a
 * {@code List<Tensor>}. {@link Kiln#compile(Fn4)} returns one of the same shape.
 */
@FunctionalInterface
public interface Fn4<R> {
    R apply(Tensor a, Tensor b, Tensor c, Tensor d);
}
