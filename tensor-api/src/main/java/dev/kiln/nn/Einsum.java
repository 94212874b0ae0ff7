package dev.kiln.nn;

import dev.kiln.tensor.Tensor;

/** Einstein summation, lowered to Kiln ops. (Skeleton: implemented by the einsum work package.) */
final class Einsum {
    private Einsum() {}

    static Tensor evaluate(String equation, Tensor... operands) {
        throw new UnsupportedOperationException("einsum");
    }
}
