package dev.kiln;

/**
 * A function of any number of arguments: tensors (graph inputs) and scalars (Integer,
 * Long, Double, Float, Boolean, String or enum values, guarded by value: a new value
 * recompiles). Returns a Tensor, a {@code Tensor[]} or a {@code List<Tensor>}. Compile it with {@link Kiln#compileN}.
 */
@FunctionalInterface
public interface FnN<R> {
    R apply(Object... args);
}
