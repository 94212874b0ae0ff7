package dev.kiln.npu.kernels;

import dev.kiln.tensor.Layout;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The iteration space of a reduction: the kept dimensions (enumerating outputs, in
 * output order) and the reduced dimensions (enumerating the elements combined into
 * one output), simplified so the kernels' inner loops run as long and as unit-stride
 * as the layout allows.
 *
 * <p>Size-1 dimensions are dropped. The reduced dimensions are visited in any order
 * (every reduction here is order-insensitive up to rounding), so negative strides are
 * flipped, the dimensions sorted by decreasing stride and adjacent ones merged: a
 * transposed or reversed input then reduces as one contiguous run. Kept dimensions
 * keep their order (it is the output's) and merge where both input and output allow.
 */
final class ReducePlan {
    /** Kept dimensions: sizes, input strides, output strides. */
    final int[] keptSizes;
    final long[] keptIn, keptOut;
    /** Reduced dimensions, by decreasing input stride; the last is the innermost run. */
    final int[] redSizes;
    final long[] redIn;
    /** Input offset of the first element (after flipping negative reduced strides). */
    final long base;
    final long outCount, redCount;

    private ReducePlan(int[] keptSizes, long[] keptIn, long[] keptOut, int[] redSizes, long[] redIn, long base,
                       long outCount, long redCount) {
        this.keptSizes = keptSizes;
        this.keptIn = keptIn;
        this.keptOut = keptOut;
        this.redSizes = redSizes;
        this.redIn = redIn;
        this.base = base;
        this.outCount = outCount;
        this.redCount = redCount;
    }

    private record Dim(int size, long in, long out) {}

    /** Plan for reducing {@code dims} (sorted, resolved) of a tensor with layout {@code x} into a contiguous output. */
    static ReducePlan of(Layout x, List<Integer> dims) {
        int[] d = x.shape().dims();
        long[] st = x.strides();
        boolean[] reduced = new boolean[d.length];
        for (int dim : dims) if (d.length > 0) reduced[dim] = true;

        long outCount = 1, redCount = 1, base = x.offset();
        List<Dim> kept = new ArrayList<>(), red = new ArrayList<>();
        long outStride = 1;
        for (int i = d.length - 1; i >= 0; i--) {
            if (reduced[i]) {
                redCount *= d[i];
                if (d[i] == 1) continue;
                long s = st[i];
                if (s < 0) {
                    base += (d[i] - 1) * s;
                    s = -s;
                }
                red.add(new Dim(d[i], s, 0));
            } else {
                outCount *= d[i];
                if (d[i] != 1) kept.add(0, new Dim(d[i], st[i], outStride));
                outStride *= d[i];
            }
        }
        red.sort(Comparator.comparingLong(Dim::in).reversed());
        kept = merge(kept, true);
        red = merge(red, false);
        return new ReducePlan(
                kept.stream().mapToInt(Dim::size).toArray(),
                kept.stream().mapToLong(Dim::in).toArray(),
                kept.stream().mapToLong(Dim::out).toArray(),
                red.stream().mapToInt(Dim::size).toArray(),
                red.stream().mapToLong(Dim::in).toArray(),
                base, outCount, redCount);
    }

    /** Merges each dimension into its predecessor when together they step like one dimension. */
    private static List<Dim> merge(List<Dim> dims, boolean withOut) {
        List<Dim> out = new ArrayList<>();
        for (Dim dim : dims) {
            Dim prev = out.isEmpty() ? null : out.getLast();
            if (prev != null && prev.in == dim.in * dim.size && (!withOut || prev.out == dim.out * dim.size)) {
                out.set(out.size() - 1, new Dim(prev.size * dim.size, dim.in, dim.out));
            } else {
                out.add(dim);
            }
        }
        return out;
    }

    /** Length of the innermost reduced run (1 when nothing is reduced). */
    int runLength() { return redSizes.length == 0 ? 1 : redSizes[redSizes.length - 1]; }

    /** Input stride within the innermost reduced run. */
    long runStride() { return redSizes.length == 0 ? 0 : redIn[redIn.length - 1]; }

    /** Walker over the outputs: {@code a()} input offset of the output's first element, {@code b()} output offset. */
    Odometer outputs(long from) {
        return new Odometer(keptSizes, keptIn, base, keptOut, 0).seek(from);
    }

    /** Walker over the starts of the innermost reduced runs, as offsets relative to an output's first element. */
    Odometer runs(long fromRun) {
        int k = Math.max(redSizes.length - 1, 0);
        int[] sizes = Arrays.copyOf(redSizes, k);
        long[] strides = Arrays.copyOf(redIn, k);
        return new Odometer(sizes, strides, 0, new long[k], 0).seek(fromRun);
    }

    /** Walker over every reduced element, as offsets relative to an output's first element. */
    Odometer elements(long from) {
        return new Odometer(redSizes, redIn, 0, new long[redSizes.length], 0).seek(from);
    }

    /** Size of the innermost kept dimension (1 when none). */
    int keptInnerSize() { return keptSizes.length == 0 ? 1 : keptSizes[keptSizes.length - 1]; }

    /** Input stride of the innermost kept dimension. */
    long keptInnerStride() { return keptSizes.length == 0 ? 0 : keptIn[keptIn.length - 1]; }

    /** Walker over the kept dimensions but the innermost: {@code a()} input offset, {@code b()} output offset. */
    Odometer outerOutputs(long from) {
        int k = Math.max(keptSizes.length - 1, 0);
        return new Odometer(Arrays.copyOf(keptSizes, k), Arrays.copyOf(keptIn, k), base,
                Arrays.copyOf(keptOut, k), 0).seek(from);
    }
}
