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
     * given outputs, which are freshly allocated, contiguous and shaped as
     * {@link Op#infer} says. Inputs may be arbitrary strided views.
     */
    void execute(Op op, Tensor[] inputs, Tensor[] outputs);
}
