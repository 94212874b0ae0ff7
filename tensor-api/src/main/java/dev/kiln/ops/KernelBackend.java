package dev.kiln.ops;

import dev.kiln.tensor.Tensor;

/**
 * Where eager ops run. The virtual NPU in {@code npu-exec} provides the implementation,
 * found with {@link java.util.ServiceLoader}; the same kernels serve compiled graphs.
 */
public interface KernelBackend {

    /** A short name for messages ("npu"). */
    String name();

    /**
     * Runs {@code op} (never a {@link Op.ViewOp}) on concrete inputs, writing into the
     * given outputs, which are contiguous, shaped as {@link Op#infer} says and share no
     * memory with the inputs: freshly allocated, or a compiled program's planned buffer
     * that holds no live value. The exception is an {@link Op.InPlace} op, whose outputs are
     * the inputs it updates, as they are. Inputs may be arbitrary strided views.
     */
    void execute(Op op, Tensor[] inputs, Tensor[] outputs);
}
