package dev.kiln.npu.device;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.LongAdder;

/**
 * The DMA engine between DRAM (tensor storage, off-heap) and a core's SRAM. Every byte a
 * kernel moves goes through here and is counted, per launch ({@link Transfer}) and in
 * total, so tests and the cost model can see exactly what a kernel reads and writes.
 * Counters are {@link LongAdder}s: workers of one launch count concurrently.
 */
public final class Dma {
    private static final LongAdder TOTAL_READ = new LongAdder();
    private static final LongAdder TOTAL_WRITTEN = new LongAdder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private Dma() {}

    /** Bytes read from DRAM by all launches since the JVM started. */
    public static long totalBytesRead() { return TOTAL_READ.sum(); }

    /** Bytes written to DRAM by all launches since the JVM started. */
    public static long totalBytesWritten() { return TOTAL_WRITTEN.sum(); }

    public static long totalBytes() { return totalBytesRead() + totalBytesWritten(); }

    /** Starts counting the traffic of one launch of {@code kernel}. */
    public static Transfer begin(String kernel) { return new Transfer(kernel); }

    /**
     * The traffic of one launch; its copies count toward the totals when it ends ({@link #traffic}):
     * adding to the totals at every copy as well was 1% of the attention kernel's time.
     */
    public static final class Transfer {
        private final String kernel;
        private final LongAdder read = new LongAdder();
        private final LongAdder written = new LongAdder();
        private boolean ended;

        private Transfer(String kernel) { this.kernel = kernel; }

        /**
         * Copies {@code n} elements of {@code type} from DRAM at element {@code index} into
         * {@code sram[at...]} as float32, converted as a cast to float32 converts them (bool as 0/1).
         */
        public void load(MemorySegment dram, DType type, long index, MemorySegment sram, int at, int n) {
            load(dram, type, index, 1, sram, at, 1, n);
        }

        /** Reads one element from DRAM as float32 (see {@link #load}): a 0-d operand. */
        public float loadScalar(MemorySegment dram, DType type, long index) {
            read.add(type.byteSize());
            return element(dram, type, index);
        }

        private static float element(MemorySegment dram, DType type, long index) {
            return switch (type) {
                case FLOAT32 -> dram.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, index);
                case FLOAT16 -> Float.float16ToFloat(dram.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, index));
                case BFLOAT16 -> Elements.bf16ToFloat(dram.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, index));
                case FLOAT64 -> (float) dram.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, index);
                case INT32 -> (float) dram.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, index);
                case INT64 -> (float) dram.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, index);
                case INT8, UINT8, INT16, UINT16, UINT32, UINT64 -> Elements.toFloat(type, Elements.readLong(type, dram, index));
                case BOOL -> dram.get(ValueLayout.JAVA_BYTE, index) != 0 ? 1f : 0f;
            };
        }

        /**
         * Copies {@code n} elements of {@code type} (converted as {@link #load(MemorySegment, DType,
         * long, MemorySegment, int, int)} says) from DRAM at element {@code index + i * dramStride} into float32
         * {@code sram[at + i * sramStride]}: strided rows, and transposed tiles when
         * {@code sramStride} is a row length. Counts the elements' bytes in their DRAM type; with a
         * {@code dramStride} of 0 (one value broadcast along the run) that is one element.
         */
        public void load(MemorySegment dram, DType type, long index, long dramStride,
                         MemorySegment sram, int at, int sramStride, int n) {
            if (n == 0) return;
            if (type == DType.FLOAT32 && dramStride == 1 && sramStride == 1) {
                MemorySegment.copy(dram, index * Float.BYTES, sram, (long) at * Float.BYTES, (long) n * Float.BYTES);
            } else if (dramStride == 0) {
                float value = element(dram, type, index);
                for (int i = 0; i < n; i++) sram.setAtIndex(F32, at + (long) i * sramStride, value);
            } else if (type == DType.FLOAT32) {
                for (int i = 0; i < n; i++) sram.setAtIndex(F32, at + (long) i * sramStride, dram.getAtIndex(ValueLayout.JAVA_FLOAT, index + i * dramStride));
            } else {
                for (int i = 0; i < n; i++) sram.setAtIndex(F32, at + (long) i * sramStride, element(dram, type, index + i * dramStride));
            }
            read.add((dramStride == 0 ? 1L : n) * type.byteSize());
        }

        /**
         * Copies {@code n} floats {@code sram[at + i * sramStride]} to contiguous DRAM of
         * {@code type} (float32, float16 or bfloat16, rounded to nearest even) from element {@code index}.
         */
        public void store(MemorySegment sram, int at, int sramStride, MemorySegment dram, DType type, long index, int n) {
            if (n == 0) return;
            if (type == DType.FLOAT32 && sramStride == 1) {
                MemorySegment.copy(sram, (long) at * Float.BYTES, dram, index * Float.BYTES, (long) n * Float.BYTES);
            } else {
                switch (type) {
                    case FLOAT32 -> {
                        for (int i = 0; i < n; i++) dram.setAtIndex(ValueLayout.JAVA_FLOAT, index + i, sram.getAtIndex(F32, at + (long) i * sramStride));
                    }
                    case FLOAT16 -> {
                        for (int i = 0; i < n; i++) dram.setAtIndex(ValueLayout.JAVA_SHORT, index + i, Float.floatToFloat16(sram.getAtIndex(F32, at + (long) i * sramStride)));
                    }
                    case BFLOAT16 -> {
                        for (int i = 0; i < n; i++) dram.setAtIndex(ValueLayout.JAVA_SHORT, index + i, Elements.floatToBf16(sram.getAtIndex(F32, at + (long) i * sramStride)));
                    }
                    default -> throw new IllegalArgumentException("DMA stores float32, float16 or bfloat16, not " + type);
                }
            }
            written.add((long) n * type.byteSize());
        }

        /**
         * Counts {@code n} float32 elements that a kernel reads where they lie in DRAM instead of
         * copying them into SRAM first: the same bytes cross from DRAM, without the copy.
         */
        public void readInPlace(long n) {
            read.add(n * Float.BYTES);
        }

        /** Counts {@code n} float32 elements that a kernel writes straight to DRAM instead of through SRAM. */
        public void writtenInPlace(long n) {
            written.add(n * Float.BYTES);
        }

        /** Copies {@code n} floats from {@code sram[at...]} to float32 DRAM at element {@code index}. */
        public void store(MemorySegment sram, int at, MemorySegment dram, long index, int n) {
            MemorySegment.copy(sram, (long) at * Float.BYTES, dram, index * Float.BYTES, (long) n * Float.BYTES);
            written.add((long) n * Float.BYTES);
        }

        /**
         * Copies {@code n} elements of {@code elementBytes} bytes each, DRAM to DRAM, from
         * element {@code index + i * stride} of {@code src} to element {@code dstIndex + i} of
         * {@code dst}: one strided run of a view gathered into contiguous memory. Counts the
         * bytes read and written (the same: the bits move unchanged).
         */
        public void gather(MemorySegment src, long index, long stride, MemorySegment dst, long dstIndex, int n, int elementBytes) {
            if (n == 0) return;
            if (stride == 1) {
                MemorySegment.copy(src, index * elementBytes, dst, dstIndex * elementBytes, (long) n * elementBytes);
            } else {
                switch (elementBytes) {
                    case 1 -> { for (int i = 0; i < n; i++) dst.set(ValueLayout.JAVA_BYTE, dstIndex + i, src.get(ValueLayout.JAVA_BYTE, index + i * stride)); }
                    case 2 -> { for (int i = 0; i < n; i++) dst.setAtIndex(ValueLayout.JAVA_SHORT, dstIndex + i, src.getAtIndex(ValueLayout.JAVA_SHORT, index + i * stride)); }
                    case 4 -> { for (int i = 0; i < n; i++) dst.setAtIndex(ValueLayout.JAVA_INT, dstIndex + i, src.getAtIndex(ValueLayout.JAVA_INT, index + i * stride)); }
                    case 8 -> { for (int i = 0; i < n; i++) dst.setAtIndex(ValueLayout.JAVA_LONG, dstIndex + i, src.getAtIndex(ValueLayout.JAVA_LONG, index + i * stride)); }
                    default -> throw new IllegalArgumentException("DMA gathers elements of 1, 2, 4 or 8 bytes, not " + elementBytes);
                }
            }
            long bytes = (long) n * elementBytes;
            read.add(bytes);
            written.add(bytes);
        }

        /** Counts {@code bytes} copied DRAM to DRAM unchanged by a kernel of the DMA engine's own (a blocked transpose): read and written. */
        public void copied(long bytes) {
            read.add(bytes);
            written.add(bytes);
        }

        /** Ends the launch: its traffic, now also added to the totals (a second call adds nothing). */
        public LaunchTraffic traffic() {
            long r = read.sum(), w = written.sum();
            if (!ended) {
                ended = true;
                TOTAL_READ.add(r);
                TOTAL_WRITTEN.add(w);
            }
            return new LaunchTraffic(kernel, r, w);
        }
    }
}
