package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * Presents the blocks of an elementwise loop to a scalar kernel working on Java arrays
 * ({@code double[]} for float64, {@code long[]} for integer and bool arithmetic): every
 * input is staged into an array, converted to the compute type, and the result array
 * is stored converting to the output dtype.
 *
 * @param <A> the working array type
 */
final class ArrayBlocks<A> implements ElementwiseLoop.Blocks {

    /** How one working array type loads, stores and allocates. */
    interface Domain<A> {
        A allocate(int n);
        A[] allocateArrays(int count);
        void load(DType t, MemorySegment src, long at, long stride, int n, A dst);
        void store(A src, int n, DType t, MemorySegment dst, long at);
    }

    static final Domain<double[]> DOUBLES = new Domain<>() {
        public double[] allocate(int n) { return new double[n]; }
        public double[][] allocateArrays(int count) { return new double[count][]; }
        public void load(DType t, MemorySegment src, long at, long stride, int n, double[] dst) { Staging.toDoubles(t, src, at, stride, n, dst); }
        public void store(double[] src, int n, DType t, MemorySegment dst, long at) { Staging.storeDoubles(src, n, t, dst, at); }
    };

    static final Domain<long[]> LONGS = new Domain<>() {
        public long[] allocate(int n) { return new long[n]; }
        public long[][] allocateArrays(int count) { return new long[count][]; }
        public void load(DType t, MemorySegment src, long at, long stride, int n, long[] dst) { Staging.toLongs(t, src, at, stride, n, dst); }
        public void store(long[] src, int n, DType t, MemorySegment dst, long at) { Staging.storeLongs(src, n, t, dst, at); }
    };

    /** A kernel over arrays of n valid elements; {@code outIndex} is the block's first output element (for messages). */
    @FunctionalInterface
    interface Kernel<A> {
        void apply(A[] in, A out, int n, long outIndex);
    }

    /** A tensor input, or (with a null tensor) a constant: an array of at least one block, already filled. */
    record Input<A>(Tensor tensor, A constant) {
        static <A> Input<A> of(Tensor t) { return new Input<>(t, null); }
        static <A> Input<A> constant(A filled) { return new Input<>(null, filled); }
    }

    private final Domain<A> domain;
    private final Input<A>[] inputs;
    private final long[] strides;
    private final A[] arrays;
    private final A result;
    private final MemorySegment out;
    private final DType outType;
    private final long outBase;
    private final Kernel<A> kernel;

    /** Blocks for one range; {@code innerStrides} has one entry per tensor input, in order. */
    ArrayBlocks(Domain<A> domain, Input<A>[] inputs, long[] innerStrides, Tensor out, int blockSize, Kernel<A> kernel) {
        this.domain = domain;
        this.inputs = inputs;
        this.strides = new long[inputs.length];
        this.arrays = domain.allocateArrays(inputs.length);
        int t = 0;
        for (int i = 0; i < inputs.length; i++) {
            if (inputs[i].tensor() == null) {
                arrays[i] = inputs[i].constant();
            } else {
                strides[i] = innerStrides[t++];
                arrays[i] = domain.allocate(blockSize);
            }
        }
        this.result = domain.allocate(blockSize);
        this.out = out.storage().segment();
        this.outType = out.dtype();
        this.outBase = out.layout().offset();
        this.kernel = kernel;
    }

    @Override
    public void run(long outIndex, long[] inOffsets, int n) {
        int t = 0;
        for (int i = 0; i < inputs.length; i++) {
            Tensor x = inputs[i].tensor();
            if (x != null) domain.load(x.dtype(), x.storage().segment(), inOffsets[t++], strides[i], n, arrays[i]);
        }
        kernel.apply(arrays, result, n, outIndex);
        domain.store(result, n, outType, out, outBase + outIndex);
    }
}
