package dev.kiln;

import dev.kiln.tensor.Tensor;

/**
 * A function of 3 tensors returning {@code R}: a {@link Tensor}, a {@code Tensor[]} or a
 * {@code List<Tensor>}. {@link Kiln#compile(Fn3)} returns one of the same shape.
 */
@FunctionalInterface
public interface Fn3<R> {
    R apply(Tensor a, Tensor b, Tensor c);
}
