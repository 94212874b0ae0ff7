package dev.kiln;

import dev.kiln.tensor.Tensor;

/**
 * A function of 1 tensor returning {@code R}: a {@link Tensor}, a {@code Tensor[]} or a
 * {@code List<Tensor>}. {@link Kiln#compile(Fn1)} returns one of the same shape.
 */
@FunctionalInterface
public interface Fn1<R> {
    R apply(Tensor a);
}
