package dev.kiln.npu.fused;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.StridedIndex;
import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * A memory transfer: the DMA engine gathers a strided view (a transpose, a slice, a
 * broadcast) into a contiguous buffer, so that kernels reading whole tiles can take it.
 * Adjacent dimensions that are laid out as one are merged first, so each DMA run is as
 * long as the layout allows. Every element is read once per position of the view and
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
        int[] dims = view.shape().dims();
        long[] strides = view.strides();
        // Merge dimensions that are one run in the view, dropping size-1 dimensions.
        int[] md = new int[Math.max(1, dims.length)];
        long[] ms = new long[md.length];
        int rank = 0;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] == 1) continue;
            if (rank > 0 && ms[rank - 1] == strides[i] * dims[i]) {
                md[rank - 1] *= dims[i];
                ms[rank - 1] = strides[i];
            } else {
                md[rank] = dims[i];
                ms[rank++] = strides[i];
            }
        }
        if (rank == 0) {
            md[0] = 1;
            ms[0] = 1;
            rank = 1;
        }
        int[] runDims = java.util.Arrays.copyOf(md, rank);
        long[] runStrides = java.util.Arrays.copyOf(ms, rank);
        int inner = runDims[rank - 1];
        long innerStride = runStrides[rank - 1];
        int bytes = view.dtype().byteSize();
        MemorySegment src = view.storage().segment(), dst = out.storage().segment();
        long srcBase = view.layout().offset(), dstBase = out.layout().offset();
        Parallel.forRange(n / inner, n, (from, to) -> {
            for (long r = from; r < to; r++) {
                dma.gather(src, StridedIndex.rowOffset(runDims, runStrides, srcBase, r), innerStride, dst, dstBase + r * inner, inner, bytes);
            }
        });
        return dma.traffic();
    }
}
