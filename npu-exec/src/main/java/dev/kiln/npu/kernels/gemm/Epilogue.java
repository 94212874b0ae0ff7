package dev.kiln.npu.kernels.gemm;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.codegen.TileLoop;
import dev.kiln.npu.codegen.TileLoopCompiler;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Locale;

/**
 * A pointwise chain applied to a matmul's result C = A @ B before it is stored, as a
 * {@link TileProgram} with a single output (the value stored to C) whose inputs each
 * come from a {@link Source}: the accumulator C itself, a vector of N values broadcast
 * over the rows (a bias), a tensor of C's shape (a residual), or a 0-d scalar. All
 * inputs are float32.
 *
 * <p>The GEMM runs the program on each finished block of C while it is still in cache,
 * with the generated loop a fused pointwise kernel of the same program runs (the same
 * vector functions as the eager kernels), so the result is bit for bit that of the matmul
 * followed by the ops one by one.
 */
public record Epilogue(TileProgram program, List<Source> sources) {

    /** Where an input of the epilogue program comes from. */
    public enum Source {
        /** C, the product itself; exactly one input is. */
        ACCUMULATOR,
        /** N values, element j used in every row's column j. */
        ROW,
        /** A tensor of C's shape. */
        FULL,
        /** A single value. */
        SCALAR;

        /** The word of the text form: acc, row, full, scalar. */
        public String token() { return this == ACCUMULATOR ? "acc" : name().toLowerCase(Locale.ROOT); }

        public static Source ofToken(String token) {
            for (Source s : values()) if (s.token().equals(token)) return s;
            throw new IllegalArgumentException("unknown epilogue source '" + token + "' (expected acc, row, full or scalar)");
        }
    }

    public Epilogue {
        sources = List.copyOf(sources);
        if (program.outputs() != 1) throw new IllegalArgumentException("an epilogue stores one value, not " + program.outputs());
        if (sources.size() != program.inputs().size()) {
            throw new IllegalArgumentException("an epilogue of " + program.inputs().size() + " inputs needs as many sources, got " + sources);
        }
        if (sources.stream().filter(s -> s == Source.ACCUMULATOR).count() != 1) {
            throw new IllegalArgumentException("an epilogue reads the accumulator through exactly one input: " + sources);
        }
        for (int i = 0; i < sources.size(); i++) {
            TileProgram.InputSpec spec = program.inputs().get(i);
            if (spec.dtype() != DType.FLOAT32) throw new IllegalArgumentException("epilogue input " + i + " is " + spec.dtype() + ", not float32");
            if (spec.scalar() != (sources.get(i) == Source.SCALAR)) {
                throw new IllegalArgumentException("epilogue input " + i + " is " + (spec.scalar() ? "0-d" : "a tile") + " but its source is "
                        + sources.get(i).token());
            }
        }
    }

    /** Number of operands the caller supplies: every input but the accumulator. */
    public int operandCount() { return sources.size() - 1; }

    /**
     * Computes the float32 product {@code p} (whose output has {@code shape}) and applies
     * the epilogue with {@code operands} (see {@link #bind}); {@code op} names the
     * operation in errors.
     */
    public void compute(String op, GemmProblem p, Shape shape, Tensor... operands) {
        compute(op, p, shape, null, null, operands);
    }

    /**
     * {@link #compute(String, GemmProblem, Shape, Tensor...)} at a call site that keeps its
     * right operand {@code b} packed (see {@link WeightPanels}).
     */
    public void compute(String op, GemmProblem p, Shape shape, WeightPanels site, Tensor b, Tensor... operands) {
        if (p.a().dtype() != DType.FLOAT32 || p.b().dtype() != DType.FLOAT32) {
            throw new KilnException(op + ": a matmul epilogue needs float32 operands, got " + p.a().dtype() + " and " + p.b().dtype());
        }
        Bound bound = bind(op, operands, shape, p.n());
        if (p.k() > 0 && !FloatGemv.tryCompute(p)) {
            FloatGemm.compute(p, bound, site, b);
            return;
        }
        // The product is already in C (or is empty): one pass over it, rows split between workers.
        long allRows = (long) p.batch() * p.m();
        Parallel.forRange(allRows, allRows * p.n() * Math.max(1, program.instructions().size()), (from, to) -> {
            Worker w = bound.newWorker();
            for (long r = from; r < to; ) {
                int batch = (int) (r / p.m()), row = (int) (r % p.m()), rows = (int) Math.min(to - r, p.m() - row);
                w.apply(p, batch, row, rows, 0, p.n());
                r += rows;
            }
        });
    }

    /**
     * The epilogue with its operands for an output of {@code shape} whose rows have
     * {@code n} columns (the last dimension, or 1 for a matrix times a vector), in input
     * order without the accumulator; checks each one's type and shape and makes views
     * contiguous.
     */
    Bound bind(String op, Tensor[] operands, Shape shape, int n) {
        if (operands.length != operandCount()) {
            throw new KilnException(op + ": the epilogue takes " + operandCount() + " operands, got " + operands.length);
        }
        Tensor[] bySource = new Tensor[sources.size()];
        float[] scalars = new float[sources.size()];
        int next = 0;
        for (int i = 0; i < sources.size(); i++) {
            Source s = sources.get(i);
            if (s == Source.ACCUMULATOR) continue;
            Tensor t = operands[next++];
            if (t.dtype() != DType.FLOAT32) throw new KilnException(op + ": epilogue operand " + (next - 1) + " must be float32, got " + t.dtype());
            boolean fits = switch (s) {
                case ROW -> t.numel() == n && (t.shape().rank() == 0 || t.shape().dims()[t.shape().rank() - 1] == n);
                case FULL -> t.shape().equals(shape);
                case SCALAR -> t.numel() == 1;
                case ACCUMULATOR -> false;
            };
            if (!fits) {
                throw new KilnException(op + ": epilogue operand " + (next - 1) + " (" + s.token() + ") must be "
                        + switch (s) {
                            case ROW -> "a vector of " + n + " values (one per column of the product)";
                            case FULL -> "of the output's shape " + shape;
                            default -> "a single value";
                        } + ", got " + t.shape());
            }
            if (s == Source.SCALAR) scalars[i] = (float) t.item();
            else bySource[i] = t.isContiguous() ? t : t.contiguous();
        }
        return new Bound(this, bySource, scalars, TileLoopCompiler.load(program));
    }

    /**
     * An epilogue with its operands ({@code tensors[i]} for row and full inputs,
     * {@code scalars[i]} for scalar ones) and its generated loop, looked up once per product
     * rather than once per worker's share of it.
     */
    record Bound(Epilogue epilogue, Tensor[] tensors, float[] scalars, TileLoopCompiler.Compiled compiled) {
        Worker newWorker() { return new Worker(this); }
    }

    /**
     * One worker's evaluator: runs the program's generated tile loop (the class a fused
     * pointwise kernel of the same program runs, {@link TileLoopCompiler}) over rectangles of
     * C, every value in registers. A single-stage loop runs on each row of C in place, reading
     * the operands' rows where they are (copying them into SRAM slots and the result back took
     * four times the loop's own time in a profile of the W4 block's gated epilogue). Otherwise,
     * or when a row is not whole vectors, inputs are copied into slots of about {@value #CHUNK}
     * floats row by row, and the result back into C.
     */
    static final class Worker {
        private static final int CHUNK = 2048;
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
        private static final ByteOrder ORDER = ByteOrder.nativeOrder();
        /** Most columns per chunk row; wider rectangles are cut. */
        private static final int MAX_WIDTH = 512;
        /** Elements per in-place piece of whole rows: a few times L1, so the call's own cost is small beside it. */
        private static final int RUN_ELEMENTS = 16384;

        private final Bound bound;
        private final TileLoopCompiler.Compiled compiled;
        private final int[] inputSlot;
        private final int outputSlot;
        /** Whether an input is a row (N values repeated in every row of C), which a run of several rows cannot read. */
        private final boolean readsRowSource;
        /**
         * Native, as the generated loops want (see {@code Sram}); slots x CHUNK floats, made at
         * the first chunk: rows run in place need none, and a worker is made per share of every
         * product (zeroing and registering the memory was 1% of a decoder block's time).
         */
        private MemorySegment scratch;
        private MemorySegment[] scratchSlots;
        private long[] scratchOffsets;
        /** Where each slot is for a row run in place (reused from row to row). */
        private final MemorySegment[] rowSlots;
        private final long[] rowOffsets;

        Worker(Bound bound) {
            this.bound = bound;
            this.compiled = bound.compiled();
            this.inputSlot = compiled.inputSlot();
            this.outputSlot = compiled.outputSlot()[0];
            this.readsRowSource = bound.epilogue().sources().contains(Source.ROW);
            this.rowSlots = new MemorySegment[compiled.slots()];
            this.rowOffsets = new long[compiled.slots()];
        }

        /** Applies the epilogue to rows [row0, row0 + rows) x columns [col0, col0 + cols) of batch entry {@code batch} of C. */
        void apply(GemmProblem p, int batch, int row0, int rows, int col0, int cols) {
            if (compiled.stages() == 1 && cols % S.length() == 0) {
                // Whole rows lie end to end in C and in a tensor of C's shape: unless a row source repeats
                // along them, several run as one piece. A call per row cost [256,64]x[64,512] with a residual
                // 0.174 ms against 0.167, with the gated epilogue 0.265 against 0.249 (paired, one JVM); at
                // [256,1536]x[1536,512], where the product dominates, 1.004 and 1.008 times as long.
                int rowsPerPiece = col0 == 0 && cols == p.n() && !readsRowSource ? Math.max(1, RUN_ELEMENTS / cols) : 1;
                for (int r = 0; r < rows; r += rowsPerPiece) inPlace(p, batch, row0 + r, col0, Math.min(rowsPerPiece, rows - r) * cols);
                return;
            }
            for (int c = 0; c < cols; c += MAX_WIDTH) {
                int width = Math.min(MAX_WIDTH, cols - c);
                int padded = (width + S.length() - 1) / S.length() * S.length();
                int chunkRows = Math.max(1, CHUNK / padded);
                for (int r = 0; r < rows; r += chunkRows) {
                    chunk(p, batch, row0 + r, Math.min(chunkRows, rows - r), col0 + c, width, padded);
                }
            }
        }

        /**
         * Columns [col0, col0 + width) of C from row {@code row} on (past the row's end only when
         * whole rows run together), a whole number of vectors, with the operands read where they are.
         */
        private void inPlace(GemmProblem p, int batch, int row, int col0, int width) {
            List<Source> sources = bound.epilogue().sources();
            for (int k = 0; k < sources.size(); k++) {
                if (sources.get(k) == Source.SCALAR) continue;
                rowSlots[inputSlot[k]] = segment(p, k);
                rowOffsets[inputSlot[k]] = index(p, k, batch, row, col0) * Float.BYTES;
            }
            rowSlots[outputSlot] = p.out();
            rowOffsets[outputSlot] = (p.outIndex(batch, row) + col0) * Float.BYTES;
            compiled.loop().run(rowSlots, rowOffsets, bound.scalars(), width);
        }

        /** The memory of input {@code k} (not a scalar): C for the accumulator, else its operand's. */
        private MemorySegment segment(GemmProblem p, int k) {
            return bound.epilogue().sources().get(k) == Source.ACCUMULATOR ? p.out() : bound.tensors()[k].storage().segment();
        }

        /** The element of {@link #segment} where input {@code k}'s values for columns col0.. of C's row {@code row} start. */
        private long index(GemmProblem p, int k, int batch, int row, int col0) {
            Tensor t = bound.tensors()[k];
            return switch (bound.epilogue().sources().get(k)) {
                case ACCUMULATOR -> p.outIndex(batch, row) + col0;
                case ROW -> t.layout().offset() + col0;
                case FULL -> t.layout().offset() + p.outIndex(batch, row) - p.outOffset() + col0;
                case SCALAR -> throw new IllegalStateException("a scalar input is broadcast, not loaded");
            };
        }

        /** One chunk: {@code rows} rows of {@code width} columns, each row {@code padded} floats apart in the slots. */
        private void chunk(GemmProblem p, int batch, int row0, int rows, int col0, int width, int padded) {
            if (scratch == null) {
                scratch = Arena.ofAuto().allocate((long) compiled.slots() * CHUNK * Float.BYTES, 64);
                scratchSlots = TileLoop.sameSegment(scratch, compiled.slots());
                scratchOffsets = TileLoop.spaced((long) CHUNK * Float.BYTES, compiled.slots());
            }
            List<Source> sources = bound.epilogue().sources();
            for (int k = 0; k < sources.size(); k++) {
                if (sources.get(k) != Source.SCALAR) load(p, k, inputSlot[k], batch, row0, rows, col0, width, padded);
            }
            compiled.loop().run(scratchSlots, scratchOffsets, bound.scalars(), rows * padded);
            for (int r = 0; r < rows; r++) {
                copy(scratch, at(outputSlot) + (long) r * padded * Float.BYTES, p.out(), p.outIndex(batch, row0 + r) + col0, width, false);
            }
        }

        private void load(GemmProblem p, int input, int dst, int batch, int row0, int rows, int col0, int width, int padded) {
            MemorySegment from = segment(p, input);
            for (int r = 0; r < rows; r++) {
                copy(from, index(p, input, batch, row0 + r, col0), scratch, at(dst) + (long) r * padded * Float.BYTES, width, true);
            }
        }

        /**
         * Copies {@code width} floats from element {@code from} of {@code src} to byte offset
         * {@code to} of the scratch ({@code intoScratch}), or from scratch byte offset
         * {@code from} to element {@code to} of {@code dst}.
         */
        private static void copy(MemorySegment src, long from, MemorySegment dst, long to, int width, boolean intoScratch) {
            long srcBytes = intoScratch ? from * Float.BYTES : from, dstBytes = intoScratch ? to : to * Float.BYTES;
            for (int v = 0; v < width; v += S.length()) {
                long o = (long) v * Float.BYTES;
                if (v + S.length() <= width) {
                    FloatVector.fromMemorySegment(S, src, srcBytes + o, ORDER).intoMemorySegment(dst, dstBytes + o, ORDER);
                } else {
                    VectorMask<Float> m = S.indexInRange(v, width);
                    FloatVector.fromMemorySegment(S, src, srcBytes + o, ORDER, m).intoMemorySegment(dst, dstBytes + o, ORDER, m);
                }
            }
        }

        private long at(int register) { return (long) register * CHUNK * Float.BYTES; }
    }
}
