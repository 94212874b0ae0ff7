package dev.kiln.ops;

/** Stride arithmetic for views. */
final class ViewMath {
    private ViewMath() {}

    /**
     * Strides that view memory laid out as (oldDims, oldStrides) with newDims, or null
     * when no such view exists. Groups of old dimensions that are contiguous with each
     * other can be split and merged freely; this is PyTorch's {@code computeStride}.
     */
    static long[] reshapeStrides(int[] oldDims, long[] oldStrides, int[] newDims) {
        long[] newStrides = new long[newDims.length];
        long numel = 1;
        for (int d : oldDims) numel *= d;
        if (numel == 0) {
            long acc = 1;
            for (int i = newDims.length - 1; i >= 0; i--) {
                newStrides[i] = acc;
                acc *= Math.max(newDims[i], 1);
            }
            return newStrides;
        }
        int viewD = newDims.length - 1;
        long chunkBaseStride = oldDims.length == 0 ? 1 : oldStrides[oldDims.length - 1];
        long tensorNumel = 1, viewNumel = 1;
        for (int tensorD = oldDims.length - 1; tensorD >= 0; tensorD--) {
            tensorNumel *= oldDims[tensorD];
            if (tensorD == 0 || (oldDims[tensorD - 1] != 1 && oldStrides[tensorD - 1] != tensorNumel * chunkBaseStride)) {
                while (viewD >= 0 && (viewNumel < tensorNumel || newDims[viewD] == 1)) {
                    newStrides[viewD] = viewNumel * chunkBaseStride;
                    viewNumel *= newDims[viewD];
                    viewD--;
                }
                if (viewNumel != tensorNumel) return null;
                if (tensorD > 0) {
                    chunkBaseStride = oldStrides[tensorD - 1];
                    tensorNumel = 1;
                    viewNumel = 1;
                }
            }
        }
        if (viewD != -1) {
            // Only trailing size-1 dimensions can remain (reshaping a scalar, say).
            for (; viewD >= 0; viewD--) {
                if (newDims[viewD] != 1) return null;
                newStrides[viewD] = 1;
            }
        }
        return newStrides;
    }
}
