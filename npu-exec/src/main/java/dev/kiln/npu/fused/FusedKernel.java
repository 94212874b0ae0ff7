package dev.kiln.npu.fused;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.StridedIndex;
import dev.kiln.npu.TransposedCopy;
import dev.kiln.npu.codegen.TileLoop;
import dev.kiln.npu.codegen.TileLoopCompiler;
import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.device.Sram;
import dev.kiln.npu.kernels.Odometer;
import dev.kiln.npu.kernels.TileKernels;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link TileProgram} made runnable on a device: the output is cut into tiles sized so
 * that all registers fit one core's SRAM; workers take contiguous ranges of tiles; per
 * tile, inputs come in by DMA, the program runs on SRAM, outputs go out by DMA. Each
 * input element is thus read once and each output element written once, whatever the
 * length of the chain.
 *
 * <p>An input may be smaller than the output and broadcast to its shape (NumPy rules: a
 * bias of one value per column, a column of one value per row): the DMA then reads it
 * through strides over the output's dimensions, 0 where it is broadcast, into each tile,
 * so it is never materialised at the output's size. Its DMA count is what the tiles read.
 *
 * <p>The program runs in one of two ways ({@link Strategy}): a class generated for it
 * ({@link TileLoopCompiler}), one pass per tile with every value in a register, or the
 * shared tile primitives ({@link TileKernels}), one pass over the tile per instruction.
 */
public final class FusedKernel {
    /**
     * Upper bound on a tile: past a few tens of KiB per register the passes over a tile
     * stop fitting the nearer caches, and smaller tiles balance better across workers.
     */
    private static final int MAX_TILE = 8192;
    /**
     * Tile of a generated loop, which makes one pass over a few slots: small enough that they
     * stay in L1 (on W1, one thread, 512 to 1024 elements ran about 20% faster than 8192), and
     * short loops that a fresh JVM compiles on their call counts rather than by on-stack
     * replacement after tens of thousands of interpreted iterations.
     */
    private static final int GENERATED_TILE = 1024;

    /** How the program runs. */
    public enum Strategy {
        /** A generated class: one pass per tile, values in registers, only inputs and outputs in SRAM. */
        GENERATED,
        /** The shared, pre-built tile primitives: one pass per instruction, every register a tile of SRAM. */
        PRIMITIVES;

        /**
         * The generated loop. Measured on W1 over 4M floats, one worker, CPU time once compiled:
         * about 6 ms against 13 ms for the primitives (a hand-written loop: 5.7 ms). First calls
         * in a fresh JVM cost about the same either way (both start in the interpreter and wait
         * for C2); generating adds Byte Buddy's one-time start-up (0.2 to 0.7 s on a loaded
         * machine) and about 10 ms per program after that.
         */
        public static Strategy preferred() { return GENERATED; }
    }

    private final String name;
    private final TileProgram program;
    private final NpuDevice device;
    private final Strategy strategy;
    private final TileLoopCompiler.Compiled compiled;
    private final int tile;
    /** Setup fills made once per range of tiles, and those redone per tile because the body overwrites their register. */
    private final TileInstr[] setupOnce, setupPerTile;
    private final TileInstr[] body;
    private final int cost;

    public FusedKernel(String name, TileProgram program, NpuDevice device) { this(name, program, device, Strategy.preferred()); }

    public FusedKernel(String name, TileProgram program, NpuDevice device, Strategy strategy) {
        this.name = name;
        this.program = program;
        this.device = device;
        this.strategy = strategy;
        this.compiled = strategy == Strategy.GENERATED ? TileLoopCompiler.load(program) : null;
        int slots = compiled != null ? compiled.slots() : program.registers();
        this.tile = compiled != null ? Math.min(GENERATED_TILE, tileFor(slots, device)) : tileFor(slots, device);
        if (tile == 0) {
            throw new KilnException(name + ": a tile program of " + slots + (compiled != null ? " SRAM slots" : " registers")
                    + " does not fit " + device.sramBytesPerCore() + " bytes of SRAM");
        }
        // Loops, not streams: each lambda costs a fresh JVM a generated class on every warm start's path.
        List<TileInstr> body = new ArrayList<>(), setup = new ArrayList<>();
        for (TileInstr ins : program.instructions()) (ins.isSetup() ? setup : body).add(ins);
        this.body = body.toArray(new TileInstr[0]);
        java.util.Set<Integer> overwritten = new java.util.HashSet<>();
        for (TileInstr ins : body) {
            switch (ins) {
                case TileInstr.Load l -> overwritten.add(l.dst());
                case TileInstr.Unary u -> overwritten.add(u.dst());
                case TileInstr.Binary b -> overwritten.add(b.dst());
                case TileInstr.Clamp c -> overwritten.add(c.dst());
                case TileInstr.Where w -> overwritten.add(w.dst());
                default -> { }
            }
        }
        List<TileInstr> once = new ArrayList<>(), perTile = new ArrayList<>();
        for (TileInstr ins : setup) (overwritten.contains(setupRegister(ins)) ? perTile : once).add(ins);
        this.setupOnce = once.toArray(new TileInstr[0]);
        this.setupPerTile = perTile.toArray(new TileInstr[0]);
        this.cost = Math.max(1, this.body.length);
    }

    /** Elements per tile for a program of {@code registers} tile-sized SRAM slots on {@code device}; 0 when not even one vector fits. */
    public static int tileFor(int registers, NpuDevice device) {
        long perRegister = Math.min(MAX_TILE, device.sramFloats() / registers);
        int quantum = perRegister >= TileKernels.QUANTUM ? TileKernels.QUANTUM : TileKernels.LANES;
        return (int) Math.max(0, perRegister - perRegister % quantum);
    }

    public String name() { return name; }
    public TileProgram program() { return program; }
    public int tile() { return tile; }
    public Strategy strategy() { return strategy; }

    /**
     * Runs the kernel: {@code inputs} as the program declares them (of a shape that broadcasts
     * to the outputs', contiguous of their element count, or 0-d), results into the contiguous
     * float32 {@code outputs}. An output may be an input's very memory (an in-place update,
     * when the program loads that input before it stores the output), never a shifted part of
     * it: tiles are written as they are finished. Returns the DRAM traffic of this launch.
     */
    public LaunchTraffic launch(Tensor[] given, Tensor[] outputs) {
        check(given, outputs);
        long n = outputs[0].numel();
        Dma.Transfer dma = Dma.begin(name);
        List<TileProgram.InputSpec> specs = program.inputs();
        // A tile reads a transposed input one element per source row: large ones are copied in blocks first, the copy
        // counted (a 0-d scalar never has the output's shape, or the size to be one).
        Tensor[] inputs = TransposedCopy.untangled(given, outputs[0].shape(), dma);
        float[] scalars = new float[inputs.length];
        Spread[] spread = new Spread[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            if (specs.get(i).scalar()) {
                scalars[i] = dma.loadScalar(inputs[i].storage().segment(), specs.get(i).dtype(), inputs[i].layout().offset());
            } else if (!(inputs[i].isContiguous() && inputs[i].numel() == n)) {
                spread[i] = new Spread(inputs[i], outputs[0].shape());
            }
        }
        long tiles = (n + tile - 1) / tile;
        if (compiled != null) {
            boolean inPlace = compiled.stages() == 1;
            Parallel.forRange(tiles, n * cost, (from, to) -> runGenerated(inputs, spread, outputs, scalars, dma, n, inPlace, from, to));
        } else {
            Parallel.forRange(tiles, n * cost, (from, to) -> runTiles(inputs, spread, outputs, scalars, dma, n, from, to));
        }
        return dma.traffic();
    }

    /**
     * An input read through strides over the output's dimensions: broadcast (stride 0) or a
     * view. Its rows are the output's (every dimension but the last), at {@code rowStrides} in
     * the input; a row's elements are {@code innerStride} apart.
     */
    private record Spread(Tensor x, int rowLength, long innerStride, int[] rowDims, long[] rowStrides) {
        Spread(Tensor x, Shape out) {
            this(x, out.dims(), StridedIndex.broadcastStrides(x.layout(), out));
        }

        private Spread(Tensor x, int[] dims, long[] strides) {
            this(x, dims[dims.length - 1], strides[dims.length - 1], Arrays.copyOf(dims, dims.length - 1),
                    Arrays.copyOf(strides, dims.length - 1));
        }

        /** Loads the output's elements [start, start + len) of this input into {@code sram} from element {@code at}, a row's run at a time. */
        void load(Dma.Transfer dma, long start, int len, MemorySegment sram, int at) {
            Odometer rows = new Odometer(rowDims, rowStrides, x.layout().offset(), new long[rowDims.length], 0).seek(start / rowLength);
            int column = (int) (start % rowLength);
            MemorySegment dram = x.storage().segment();
            for (int done = 0; done < len; column = 0, rows.next()) {
                int run = Math.min(rowLength - column, len - done);
                dma.load(dram, x.dtype(), rows.a() + column * innerStride, innerStride, sram, at + done, 1, run);
                done += run;
            }
        }
    }

    /**
     * Runs the generated loop over tiles [fromTile, toTile). With {@code inPlace}, a full tile's
     * float32 inputs are read, and its outputs written, where they lie in DRAM rather than
     * copied into SRAM and back: on this CPU the copies are not overlapped with the arithmetic,
     * as an NPU's DMA engines would be, and cost a fifth of W1's time. The DMA counts are the
     * same bytes either way. A single-stage loop reads each vector of its inputs before it writes
     * that vector of its outputs, so an in-place update stays exact. A partial last tile goes
     * through SRAM, as the loop runs whole vectors.
     */
    private void runGenerated(Tensor[] inputs, Spread[] spread, Tensor[] outputs, float[] scalars, Dma.Transfer dma, long n,
                              boolean inPlace, long fromTile, long toTile) {
        MemorySegment seg = Sram.local(device).segment();
        int[] inputSlot = compiled.inputSlot(), outputSlot = compiled.outputSlot();
        TileLoop loop = compiled.loop();
        MemorySegment[] slots = TileLoop.sameSegment(seg, compiled.slots());
        long[] offsets = TileLoop.spaced((long) tile * Float.BYTES, compiled.slots());
        MemorySegment[] inPlaceSlots = slots.clone();
        long[] inPlaceOffsets = offsets.clone();
        // Counted once for the range: two counter updates per tile showed in W1's profile.
        long readInPlace = 0, writtenInPlace = 0;
        for (long t = fromTile; t < toTile; t++) {
            long start = t * tile;
            int len = (int) Math.min(tile, n - start);
            if (inPlace && len == tile) {
                for (int k = 0; k < inputs.length; k++) {
                    if (inputSlot[k] < 0) continue;
                    Tensor x = inputs[k];
                    if (spread[k] != null) {
                        spread[k].load(dma, start, len, seg, inputSlot[k] * tile);
                    } else if (x.dtype() == DType.FLOAT32) {
                        inPlaceSlots[inputSlot[k]] = x.storage().segment();
                        inPlaceOffsets[inputSlot[k]] = (x.layout().offset() + start) * Float.BYTES;
                        readInPlace += len;
                    } else {
                        dma.load(x.storage().segment(), x.dtype(), x.layout().offset() + start, seg, inputSlot[k] * tile, len);
                    }
                }
                for (int o = 0; o < outputs.length; o++) {
                    inPlaceSlots[outputSlot[o]] = outputs[o].storage().segment();
                    inPlaceOffsets[outputSlot[o]] = (outputs[o].layout().offset() + start) * Float.BYTES;
                }
                loop.run(inPlaceSlots, inPlaceOffsets, scalars, len);
                writtenInPlace += outputs.length * len;
                continue;
            }
            for (int k = 0; k < inputs.length; k++) {
                if (inputSlot[k] < 0) continue;
                Tensor x = inputs[k];
                if (spread[k] != null) spread[k].load(dma, start, len, seg, inputSlot[k] * tile);
                else dma.load(x.storage().segment(), x.dtype(), x.layout().offset() + start, seg, inputSlot[k] * tile, len);
            }
            // Whole vectors: the lanes past len hold stale values, computed but never stored.
            loop.run(slots, offsets, scalars, (len + TileKernels.LANES - 1) / TileKernels.LANES * TileKernels.LANES);
            for (int o = 0; o < outputs.length; o++) {
                Tensor out = outputs[o];
                dma.store(seg, outputSlot[o] * tile, out.storage().segment(), out.layout().offset() + start, len);
            }
        }
        dma.readInPlace(readInPlace);
        dma.writtenInPlace(writtenInPlace);
    }

    private void runTiles(Tensor[] inputs, Spread[] spread, Tensor[] outputs, float[] scalars, Dma.Transfer dma, long n, long fromTile,
                          long toTile) {
        Sram sram = Sram.local(device);
        MemorySegment seg = sram.segment();
        fill(sram, setupOnce, scalars);
        for (long t = fromTile; t < toTile; t++) {
            fill(sram, setupPerTile, scalars);
            long start = t * tile;
            int len = (int) Math.min(tile, n - start);
            // Primitives work on whole vectors: the lanes past len hold stale values, computed but never stored.
            int padded = (len + TileKernels.LANES - 1) / TileKernels.LANES * TileKernels.LANES;
            for (TileInstr ins : body) {
                switch (ins) {
                    case TileInstr.Load l -> {
                        Tensor x = inputs[l.input()];
                        if (spread[l.input()] != null) spread[l.input()].load(dma, start, len, seg, l.dst() * tile);
                        else dma.load(x.storage().segment(), x.dtype(), x.layout().offset() + start, seg, l.dst() * tile, len);
                    }
                    case TileInstr.Store s -> {
                        Tensor o = outputs[s.output()];
                        dma.store(seg, s.src() * tile, o.storage().segment(), o.layout().offset() + start, len);
                    }
                    case TileInstr.Unary u -> TileKernels.unary(u.fn(), seg, at(u.src()), at(u.dst()), padded);
                    case TileInstr.Binary b -> TileKernels.binary(b.fn(), seg, at(b.a()), at(b.b()), at(b.dst()), padded);
                    case TileInstr.Clamp c -> TileKernels.clamp(c.min(), c.max(), seg, at(c.src()), at(c.dst()), padded);
                    case TileInstr.Where w -> TileKernels.where(seg, at(w.cond()), at(w.x()), at(w.y()), at(w.dst()), padded);
                    case TileInstr.Broadcast b -> throw new IllegalStateException("setup instruction in the tile body: " + b);
                    case TileInstr.Constant c -> throw new IllegalStateException("setup instruction in the tile body: " + c);
                }
            }
        }
    }

    private void fill(Sram sram, TileInstr[] setup, float[] scalars) {
        for (TileInstr ins : setup) {
            switch (ins) {
                case TileInstr.Broadcast b -> sram.fill(b.dst() * tile, tile, scalars[b.input()]);
                case TileInstr.Constant c -> sram.fill(c.dst() * tile, tile, c.value());
                default -> throw new IllegalStateException("not a setup instruction: " + ins);
            }
        }
    }

    private static int setupRegister(TileInstr setup) {
        return switch (setup) {
            case TileInstr.Broadcast b -> b.dst();
            case TileInstr.Constant c -> c.dst();
            default -> throw new IllegalStateException("not a setup instruction: " + setup);
        };
    }

    /** Byte offset of register r in SRAM. */
    private long at(int r) { return (long) r * tile * Float.BYTES; }

    private void check(Tensor[] inputs, Tensor[] outputs) {
        if (outputs.length != program.outputs() || inputs.length != program.inputs().size()) {
            throw new KilnException(name + ": expects " + program.inputs().size() + " inputs and " + program.outputs()
                    + " outputs, got " + inputs.length + " and " + outputs.length);
        }
        Shape shape = outputs[0].shape();
        for (Tensor o : outputs) {
            if (o.dtype() != DType.FLOAT32 || !o.isContiguous() || !o.shape().equals(shape)) {
                throw new KilnException(name + ": outputs must be contiguous float32 of one shape " + shape + ", got " + o.dtype() + o.shape());
            }
        }
        for (int i = 0; i < inputs.length; i++) {
            TileProgram.InputSpec spec = program.inputs().get(i);
            Tensor x = inputs[i];
            boolean flat = x.isContiguous() && x.numel() == shape.numel();
            boolean ok = x.dtype() == spec.dtype() && (spec.scalar() ? x.numel() == 1 : flat || x.shape().broadcastsTo(shape));
            if (!ok) {
                throw new KilnException(name + ": input " + i + " must be " + (spec.scalar() ? "a single " + spec.dtype() + " element"
                        : spec.dtype() + " of a shape that broadcasts to the output shape " + shape + ", or contiguous with "
                        + shape.numel() + " elements") + ", got " + x.dtype() + x.shape() + (x.isContiguous() ? "" : " (not contiguous)"));
            }
        }
    }
}
