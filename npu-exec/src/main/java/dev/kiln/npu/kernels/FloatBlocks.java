package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * Presents the blocks of an elementwise loop to a float32 vector kernel: every operand
 * as contiguous float32 at (segment, byte offset), and the output likewise. Float32
 * inputs with inner stride 1 and a float32 output are used in place; anything else
 * (other dtypes, broadcast or gathered strides, host constants) is staged through
 * per-range scratch, converting on the way in and rounding on the way out.
 *
 * <p>Kernels are only ever handed whole vectors: a block's tail (fewer than one vector)
 * is staged into scratch padded to a full vector, so kernels need no masks or scalar
 * tails; the padding lanes compute harmless garbage that is never stored.
 */
final class FloatBlocks implements ElementwiseLoop.Blocks {
    private static final int LANES = VectorMath.SPECIES.length();

    /** A float32 kernel over n elements, n a multiple of the vector length. */
    @FunctionalInterface
    interface Kernel {
        void apply(Operand[] in, MemorySegment out, long outByteOffset, int n, MemorySegment[] temps);
    }

    /** One input of a block: read {@link #segment} from {@link #byteOffset}. */
    static final class Operand {
        private final MemorySegment data;
        private final DType dtype;
        private final long stride;
        private final MemorySegment scratch;
        private final boolean constant;
        /** Element offset and count the scratch holds a broadcast of, to skip refilling it. */
        private long filledFrom = -1;
        private int filledCount;
        MemorySegment segment;
        long byteOffset;

        private Operand(MemorySegment data, DType dtype, long stride, MemorySegment scratch, boolean constant) {
            this.data = data;
            this.dtype = dtype;
            this.stride = stride;
            this.scratch = scratch;
            this.constant = constant;
        }

        private void load(long at, int n, boolean padded) {
            if (constant) {
                segment = scratch;
                byteOffset = 0;
            } else if (!padded && stride == 1 && dtype == DType.FLOAT32) {
                segment = data;
                byteOffset = at * Float.BYTES;
            } else {
                segment = scratch;
                byteOffset = 0;
                if (stride == 0) {
                    if (filledFrom != at || filledCount < n) {
                        Staging.toFloats(dtype, data, at, 0, n, scratch);
                        filledFrom = at;
                        filledCount = n;
                    }
                } else {
                    Staging.toFloats(dtype, data, at, stride, n, scratch);
                    filledFrom = -1;
                }
            }
        }
    }

    /** A tensor input, or (with a null tensor) a host constant. */
    record Input(Tensor tensor, float constant) {
        static Input of(Tensor t) { return new Input(t, 0); }
        static Input constant(float value) { return new Input(null, value); }
    }

    private final Operand[] operands;
    private final long[] strides;
    private final MemorySegment out;
    private final DType outType;
    private final long outBase;
    private final MemorySegment outScratch;
    private final Kernel kernel;
    private final MemorySegment[] temps;

    /**
     * Blocks for one range. {@code innerStrides} has one entry per tensor input, in order
     * (constants take none).
     */
    FloatBlocks(Input[] inputs, long[] innerStrides, Tensor out, int blockSize, Kernel kernel) {
        int scratchSize = Math.max(LANES, (blockSize + LANES - 1) / LANES * LANES);
        this.operands = new Operand[inputs.length];
        this.strides = new long[inputs.length];
        int t = 0;
        for (int i = 0; i < inputs.length; i++) {
            MemorySegment scratch = Staging.floatScratch(scratchSize);
            Tensor x = inputs[i].tensor();
            if (x == null) {
                for (int j = 0; j < scratchSize; j++) scratch.setAtIndex(Staging.F32, j, inputs[i].constant());
                operands[i] = new Operand(null, DType.FLOAT32, 0, scratch, true);
            } else {
                strides[i] = innerStrides[t++];
                operands[i] = new Operand(x.storage().segment(), x.dtype(), strides[i], scratch, false);
            }
        }
        this.out = out.storage().segment();
        this.outType = out.dtype();
        this.outBase = out.layout().offset();
        this.outScratch = Staging.floatScratch(scratchSize);
        this.kernel = kernel;
        this.temps = new MemorySegment[FloatKernels.TEMPS];
        for (int i = 0; i < temps.length; i++) temps[i] = Staging.floatScratch(Math.min(scratchSize, FloatKernels.SUB));
    }

    /** The offsets the loop passes cover tensor inputs only; constants are skipped. */
    @Override
    public void run(long outIndex, long[] inOffsets, int n) {
        int whole = n - n % LANES;
        if (whole > 0) step(outIndex, inOffsets, 0, whole, false);
        if (whole < n) step(outIndex, inOffsets, whole, n - whole, true);
    }

    private void step(long outIndex, long[] inOffsets, int start, int n, boolean padded) {
        int t = 0;
        for (int i = 0; i < operands.length; i++) {
            Operand op = operands[i];
            long at = op.constant ? 0 : inOffsets[t++] + start * strides[i];
            op.load(at, n, padded);
        }
        long outAt = outBase + outIndex + start;
        boolean direct = !padded && outType == DType.FLOAT32;
        int vectors = (n + LANES - 1) / LANES * LANES;
        if (direct) {
            kernel.apply(operands, out, outAt * Float.BYTES, vectors, temps);
        } else {
            kernel.apply(operands, outScratch, 0, vectors, temps);
            Staging.storeFloats(outScratch, n, outType, out, outAt);
        }
    }
}
