package dev.kiln.npu.kernels;

import dev.kiln.npu.kernels.gemm.DoubleGemm;
import dev.kiln.npu.kernels.gemm.Epilogue;
import dev.kiln.npu.kernels.gemm.FloatGemm;
import dev.kiln.npu.kernels.gemm.FloatGemv;
import dev.kiln.npu.kernels.gemm.GemmProblem;
import dev.kiln.npu.kernels.gemm.LongGemm;
import dev.kiln.npu.kernels.gemm.WeightPanels;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Tensor;

/**
 * Matrix multiplication with PyTorch's {@code matmul} semantics (1-D operands
 * promoted and their dimension removed, batch dimensions broadcast), over arbitrary
 * strided views. float32 runs a packed, cache- and register-blocked GEMM
 * ({@code gemm.FloatGemm}) or, for a few rows (decoding) or a single column,
 * packing-free kernels ({@code gemm.FloatGemv}); half types compute in float32,
 * float64 in double, integers in long.
 */
public final class MatMul {
    private MatMul() {}

    /**
     * out = epilogue(a @ b, operands...): a float32 matmul whose result goes through a
     * pointwise epilogue (bias, activation, residual, ...) before it is stored, as in
     * {@link Epilogue#compute}. {@code out} is fresh, contiguous and shaped as {@code Op.MatMul.infer} says.
     */
    public static void matmul(Tensor a, Tensor b, Tensor out, Epilogue epilogue, Tensor... operands) {
        matmul(a, b, null, out, epilogue, operands);
    }

    /**
     * {@link #matmul(Tensor, Tensor, Tensor, Epilogue, Tensor...)} at a call site that keeps
     * {@code b} packed while the same values come back ({@link WeightPanels}; null: none).
     */
    public static void matmul(Tensor a, Tensor b, WeightPanels site, Tensor out, Epilogue epilogue, Tensor... operands) {
        if (!out.isContiguous()) throw new IllegalArgumentException("matmul: the output must be contiguous, got " + out.layout());
        if (out.dtype() != DType.FLOAT32) throw new KilnTypeException("matmul with an epilogue: the output must be float32, got " + out.dtype());
        if (out.numel() == 0) return;
        GemmProblem p = GemmProblem.of(a, b, out);
        if (p.k() == 0) zero(out);
        epilogue.compute("matmul with an epilogue", p, out.shape(), site, b, operands);
    }

    /** out = a @ b, where {@code out} is fresh, contiguous and shaped as {@code Op.MatMul.infer} says. */
    public static void matmul(Tensor a, Tensor b, Tensor out) {
        matmul(a, b, null, out);
    }

    /** {@link #matmul(Tensor, Tensor, Tensor)} at a call site that keeps {@code b} packed ({@link WeightPanels}; null: none). */
    public static void matmul(Tensor a, Tensor b, WeightPanels site, Tensor out) {
        if (out.numel() == 0) return;
        if (!out.isContiguous()) throw new IllegalArgumentException("matmul: the output must be contiguous, got " + out.layout());
        GemmProblem p = GemmProblem.of(a, b, out);
        if (p.k() == 0) {
            zero(out);
            return;
        }
        switch (a.dtype()) {
            case FLOAT32 -> {
                if (!FloatGemv.tryCompute(p)) FloatGemm.compute(p, site, b);
            }
            case FLOAT16, BFLOAT16 -> FloatGemm.compute(p);
            case FLOAT64 -> DoubleGemm.compute(p);
            case INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64 -> LongGemm.compute(p);
            case BOOL -> throw new KilnTypeException("matmul: not supported for bool tensors");
        }
    }

    /** An empty sum: zeros, whatever the memory held. */
    private static void zero(Tensor out) {
        long bytes = out.numel() * out.dtype().byteSize();
        out.storage().segment().asSlice(out.layout().offset() * out.dtype().byteSize(), bytes).fill((byte) 0);
    }
}
