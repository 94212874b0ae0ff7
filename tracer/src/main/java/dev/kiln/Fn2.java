package dev.kiln;

import dev.kiln.tensor.Tensor;

/**
 * A function of 2 tensors returning {@code R}: a {@link Tensor}, a {@code Tensor[]} or a
 * {@code List<Tensor>}. {@link Kiln#compile(Fn2)} returns one of the same shape.
 */
@FunctionalInterface
public interface Fn2<R> {
    R apply(Tensor a, Tensor b);
}
