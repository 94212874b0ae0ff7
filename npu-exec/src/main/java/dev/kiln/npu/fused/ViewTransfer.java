package dev.kiln.npu.fused;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.StridedIndex;
import dev.kiln.npu.TransposedCopy;
import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * A memory transfer: the DMA engine gathers a strided view (a transpose, a slice, a
 * broadcast) into a contiguous buffer, so that kernels reading whole tiles can take it.
 * Adjacent dimensions that are laid out as one are merged first, so each DMA run is as
 * long as the layout allows; a transpose is copied in square blocks ({@link TransposedCopy}). Every element is read once per position of the view and
 * written once; the bits are copied unchanged, whatever the dtype.
 */
public final class ViewTransfer {
    private ViewTransfer() {}

    /** Copies {@code view} into {@code out} (contiguous, same dtype and shape); returns the launch's DRAM traffic. */
    public static LaunchTraffic run(String name, Tensor view, Tensor out) {
        if (out.dtype() != view.dtype() || !out.shape().equals(view.shape()) || !out.isContiguous()) {
            throw new KilnException(name + ": a transfer of " + view.dtype() + view.shape() + " needs a contiguous buffer of that type and shape, got "
                    + out.dtype() + out.shape() + (out.isContiguous() ? "" : " (not contiguous)"));
        }
        Dma.Transfer dma = Dma.begin(name);
        long n = view.numel();
        if (n == 0) return dma.traffic();
        MemorySegment src = view.storage().segment(), dst = out.storage().segment();
        long dstBase = out.layout().offset();
        TransposedCopy.Plan transposed = TransposedCopy.payingPlan(view);
        if (transposed != null) {
            TransposedCopy.copyAll(transposed, src, dst, dstBase, dma);
            return dma.traffic();
        }
        StridedIndex.Runs runs = StridedIndex.runs(view.shape().dims(), view.strides());
        int[] runDims = runs.dims();
        long[] runStrides = runs.strides();
        int rank = runDims.length;
        int inner = runDims[rank - 1];
        long innerStride = runStrides[rank - 1];
        int bytes = view.dtype().byteSize();
        long srcBase = view.layout().offset();
        Parallel.forRange(n / inner, n, (from, to) -> {
            for (long r = from; r < to; r++) {
                dma.gather(src, StridedIndex.rowOffset(runDims, runStrides, srcBase, r), innerStride, dst, dstBase + r * inner, inner, bytes);
            }
        });
        return dma.traffic();
    }
}
