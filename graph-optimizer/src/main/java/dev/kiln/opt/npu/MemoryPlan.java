package dev.kiln.opt.npu;

import dev.kiln.npu.fused.TileInstr;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Storage;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Where each value of a {@link KernelProgram} lives for one input signature: the graph's
 * inputs stay in the caller's memory, views and the outputs of in-place ops share their
 * base's buffer (an in-place op writes the caller's memory when its base is an input), values returned
 * to the caller (or viewed by one) get fresh memory each run, and every other value gets
 * a range of one arena, reused once the values in it are dead.
 *
 * <p>A buffer lives from the launch that writes it to the last launch that reads it or
 * any view of it. Buffers whose lifetimes intersect get disjoint ranges; the ranges are
 * placed greedily, largest buffer first, each into the tightest gap left by the buffers
 * already placed that it overlaps in time. A fused launch writes an output straight into
 * an input's buffer when that input dies there, has no views, is the output's size and
 * is loaded before the output is stored in the tile program: each tile is read before
 * it is overwritten, and tiles are disjoint. Eager kernels never write in place: they
 * stage operands in blocks whose order this plan does not know.
 */
public final class MemoryPlan {
    /** How a value gets its memory. */
    public enum Placement {
        /** The caller's tensor; written only by in-place ops. */
        INPUT,
        /** A new layout over another value's buffer, or that buffer after an in-place op updated it. */
        VIEW,
        /** A range of the arena. */
        ARENA,
        /** Fresh memory each run: the value (or a view of it) is returned to the caller. */
        RESULT,
        /** Never written by the program (a value computed inside a fused kernel). */
        NONE
    }

    /** One arena range and the values that use it in turn (more than one when written in place). */
    public record Buffer(List<Integer> slots, long offset, long bytes, int firstLaunch, int lastLaunch) {
        public Buffer {
            slots = List.copyOf(slots);
        }

        boolean overlapsInTime(Buffer o) { return firstLaunch <= o.lastLaunch && o.firstLaunch <= lastLaunch; }

        boolean overlapsInMemory(Buffer o) { return offset < o.offset + o.bytes && o.offset < offset + bytes; }
    }

    private final List<TensorMeta> inputMetas;
    private final TensorMeta[] metas;
    private final Placement[] placement;
    private final int[] base;
    private final long[] offset;
    private final List<Buffer> buffers;
    private final long arenaBytes;
    private final long liveBytes;
    private final long naiveBytes;
    private final long resultBytes;
    private final int inPlace;

    private MemoryPlan(List<TensorMeta> inputMetas, TensorMeta[] metas, Placement[] placement, int[] base, List<Buffer> buffers,
                       long resultBytes, int inPlace) {
        this.inputMetas = List.copyOf(inputMetas);
        this.metas = metas;
        this.placement = placement;
        this.base = base;
        this.buffers = List.copyOf(buffers);
        this.offset = new long[metas.length];
        Arrays.fill(offset, -1);
        long top = 0, naive = 0;
        for (Buffer b : buffers) {
            for (int s : b.slots()) {
                offset[s] = b.offset();
                naive += b.bytes();
            }
            top = Math.max(top, b.offset() + b.bytes());
        }
        long live = 0;
        // The most bytes live at once is reached where some buffer starts.
        for (Buffer b : buffers) {
            long at = 0;
            for (Buffer o : buffers) if (o.firstLaunch() <= b.firstLaunch() && b.firstLaunch() <= o.lastLaunch()) at += o.bytes();
            live = Math.max(live, at);
        }
        this.arenaBytes = top;
        this.liveBytes = live;
        this.naiveBytes = naive;
        this.resultBytes = resultBytes;
        this.inPlace = inPlace;
    }

    /**
     * The metadata of each output of {@code l}, given its inputs' metadata; throws
     * IllegalArgumentException (or what shape inference throws) when the inputs do not fit the launch.
     */
    static List<TensorMeta> outputMetas(KernelProgram.Launch l, List<TensorMeta> in) {
        return switch (l) {
            case KernelProgram.Eager e -> e.op().infer(in);
            case KernelProgram.Fused f -> {
                for (TensorMeta m : in) {
                    if (m.shape().numel() != f.shape().numel() && !m.shape().broadcastsTo(f.shape())) {
                        throw new IllegalArgumentException(f.name() + " computes " + f.shape() + " but is given an input " + m);
                    }
                }
                yield java.util.Collections.nCopies(f.out().size(), new TensorMeta(DType.FLOAT32, f.shape()));
            }
            case KernelProgram.MatMulFused m -> {
                TensorMeta product = new Op.MatMul().infer(in.subList(0, 2)).getFirst();
                if (!product.shape().equals(m.shape())) {
                    throw new IllegalArgumentException(m.name() + " computes " + m.shape() + " but is given " + in.get(0) + " @ " + in.get(1));
                }
                yield List.of(new TensorMeta(DType.FLOAT32, m.shape()));
            }
            case KernelProgram.Transfer t -> {
                TensorMeta m = new TensorMeta(t.dtype(), t.shape());
                if (!in.getFirst().equals(m)) throw new IllegalArgumentException("a transfer of " + m + " is given " + in.getFirst());
                yield List.of(m);
            }
        };
    }

    /** Plans {@code program} for inputs of {@code inputMetas}; throws what shape inference throws when they do not fit it. */
    public static MemoryPlan of(KernelProgram program, List<TensorMeta> inputMetas) {
        int slots = program.slots();
        List<KernelProgram.Launch> launches = program.launches();
        if (inputMetas.size() != program.inputs().size()) {
            throw new IllegalArgumentException("the program takes " + program.inputs().size() + " inputs, got " + inputMetas.size());
        }
        TensorMeta[] metas = new TensorMeta[slots];
        Placement[] placement = new Placement[slots];
        Arrays.fill(placement, Placement.NONE);
        int[] base = new int[slots];
        int[] defined = new int[slots];
        for (int s = 0; s < slots; s++) base[s] = s;
        for (int i = 0; i < inputMetas.size(); i++) {
            int s = program.inputs().get(i);
            metas[s] = inputMetas.get(i);
            placement[s] = Placement.INPUT;
            defined[s] = -1;
        }
        for (int i = 0; i < launches.size(); i++) {
            KernelProgram.Launch l = launches.get(i);
            List<TensorMeta> in = l.in().stream().map(s -> metas[s]).toList();
            List<TensorMeta> out = outputMetas(l, in);
            boolean view = l instanceof KernelProgram.Eager e && e.op() instanceof Op.ViewOp;
            Op.InPlace inPlace = l instanceof KernelProgram.Eager e && e.op() instanceof Op.InPlace ip ? ip : null;
            for (int k = 0; k < out.size(); k++) {
                int s = l.out().get(k);
                metas[s] = out.get(k);
                defined[s] = i;
                if (view || inPlace != null) {
                    base[s] = base[l.in().get(inPlace == null ? 0 : inPlace.overwrites().get(k))];
                    placement[s] = Placement.VIEW;
                } else {
                    placement[s] = Placement.ARENA;
                }
            }
        }

        // A buffer lives until the last read of any value over it; returned values live past the end.
        int end = launches.size();
        int[] lastRead = new int[slots];
        for (int s = 0; s < slots; s++) lastRead[s] = defined[s];
        for (int i = 0; i < launches.size(); i++) for (int s : launches.get(i).in()) lastRead[base[s]] = Math.max(lastRead[base[s]], i);
        for (int s : program.outputs()) {
            lastRead[base[s]] = end;
            if (placement[base[s]] == Placement.ARENA) placement[base[s]] = Placement.RESULT;
        }
        int[] views = new int[slots];
        for (int s = 0; s < slots; s++) if (placement[s] == Placement.VIEW) views[base[s]]++;

        // Buffers: each arena value starts its own, unless a fused launch writes it over a dying input.
        int[] bufferOf = new int[slots];
        Arrays.fill(bufferOf, -1);
        List<List<Integer>> chains = new ArrayList<>();
        int inPlace = 0;
        for (int i = 0; i < launches.size(); i++) {
            KernelProgram.Launch l = launches.get(i);
            boolean[] claimed = new boolean[l.in().size()];
            for (int k = 0; k < l.out().size(); k++) {
                int o = l.out().get(k);
                if (placement[o] != Placement.ARENA) continue;
                int into = l instanceof KernelProgram.Fused f ? inPlaceInput(f, k, i, metas, placement, views, lastRead, claimed) : -1;
                if (into >= 0) {
                    bufferOf[o] = bufferOf[into];
                    chains.get(bufferOf[o]).add(o);
                    inPlace++;
                } else {
                    bufferOf[o] = chains.size();
                    chains.add(new ArrayList<>(List.of(o)));
                }
            }
        }
        List<Buffer> unplaced = new ArrayList<>();
        for (List<Integer> chain : chains) {
            int first = defined[chain.get(0)], last = first;
            long bytes = 0;
            for (int s : chain) {
                last = Math.max(last, lastRead[s]);
                bytes = Math.max(bytes, align(bytesOf(metas[s])));
            }
            unplaced.add(new Buffer(chain, -1, bytes, first, last));
        }
        long resultBytes = 0;
        for (int s = 0; s < slots; s++) if (placement[s] == Placement.RESULT) resultBytes += bytesOf(metas[s]);
        return new MemoryPlan(inputMetas, metas, placement, base, place(unplaced), resultBytes, inPlace);
    }

    /**
     * The input slot of fused launch {@code i} whose buffer output {@code k} can take over,
     * or -1: an arena value without views that dies here, of the output's size, loaded
     * before the output is stored.
     */
    private static int inPlaceInput(KernelProgram.Fused f, int k, int i, TensorMeta[] metas, Placement[] placement, int[] views,
                                    int[] lastRead, boolean[] claimed) {
        List<TileInstr> code = f.program().instructions();
        int store = -1;
        for (int at = 0; at < code.size() && store < 0; at++) if (code.get(at) instanceof TileInstr.Store st && st.output() == k) store = at;
        long outBytes = bytesOf(metas[f.out().get(k)]);
        candidates:
        for (int p = 0; p < f.in().size(); p++) {
            int s = f.in().get(p);
            if (claimed[p] || placement[s] != Placement.ARENA || views[s] != 0 || lastRead[s] != i) continue;
            TensorMeta m = metas[s];
            if (m.dtype() != DType.FLOAT32 || bytesOf(m) != outBytes || f.program().inputs().get(p).scalar()) continue;
            // Every position reading this slot must load its tile before the output's store overwrites it.
            for (int q = 0; q < f.in().size(); q++) {
                if (f.in().get(q) != s) continue;
                int load = -1;
                for (int at = 0; at < code.size() && load < 0; at++) if (code.get(at) instanceof TileInstr.Load ld && ld.input() == q) load = at;
                if (load < 0 || load > store) continue candidates;
            }
            for (int q = 0; q < f.in().size(); q++) if (f.in().get(q) == s) claimed[q] = true;
            return s;
        }
        return -1;
    }

    /** Offsets for the buffers: largest first, each into the tightest gap among the placed buffers it overlaps in time. */
    private static List<Buffer> place(List<Buffer> unplaced) {
        List<Buffer> order = new ArrayList<>(unplaced);
        order.sort(Comparator.comparingLong(Buffer::bytes).reversed().thenComparingInt(Buffer::firstLaunch));
        List<Buffer> placed = new ArrayList<>();
        for (Buffer b : order) {
            List<Buffer> live = placed.stream().filter(b::overlapsInTime).sorted(Comparator.comparingLong(Buffer::offset)).toList();
            long best = -1, bestGap = Long.MAX_VALUE, cursor = 0;
            for (Buffer o : live) {
                long gap = o.offset() - cursor;
                if (gap >= b.bytes() && gap < bestGap) {
                    best = cursor;
                    bestGap = gap;
                }
                cursor = Math.max(cursor, o.offset() + o.bytes());
            }
            placed.add(new Buffer(b.slots(), best >= 0 ? best : cursor, b.bytes(), b.firstLaunch(), b.lastLaunch()));
        }
        placed.sort(Comparator.comparingLong(Buffer::offset).thenComparingInt(Buffer::firstLaunch));
        return placed;
    }

    static long bytesOf(TensorMeta m) { return m.shape().numel() * m.dtype().byteSize(); }

    private static long align(long bytes) { return Math.max(1, (bytes + Storage.ALIGNMENT - 1) / Storage.ALIGNMENT) * Storage.ALIGNMENT; }

    /** True when tensors of {@code metas} are what this plan was made for. */
    public boolean fits(List<TensorMeta> metas) { return inputMetas.equals(metas); }

    public List<TensorMeta> inputMetas() { return inputMetas; }

    public int slots() { return metas.length; }

    /** The metadata of a slot's value, or null for a slot the program never writes. */
    public TensorMeta meta(int slot) { return metas[slot]; }

    public Placement placement(int slot) { return placement[slot]; }

    /** The slot whose memory a slot's value uses: the value under a chain of views, or the slot itself. */
    public int base(int slot) { return base[slot]; }

    /** Byte offset of a slot's value in the arena, or -1 when it is not in the arena. */
    public long offset(int slot) { return offset[slot]; }

    /** The arena's buffers in offset order. */
    public List<Buffer> buffers() { return buffers; }

    /** The arena's size: the peak bytes of the program's intermediate values. */
    public long arenaBytes() { return arenaBytes; }

    /** The most bytes of buffers live at once: no layout of these buffers fits a smaller arena. */
    public long liveBytes() { return liveBytes; }

    /** What the intermediate values take with one allocation each, as without a plan. */
    public long naiveBytes() { return naiveBytes; }

    /** Bytes allocated fresh each run for the values returned to the caller. */
    public long resultBytes() { return resultBytes; }

    /** Values written into an input's buffer by the launch that last reads it. */
    public int inPlaceCount() { return inPlace; }

    /** {@code arena 1.5 KiB for 4 intermediates (1.5 KiB live at most, 3.0 KiB one buffer each, 1 in place), results 512 B per run}. */
    public String summary() {
        int values = buffers.stream().mapToInt(b -> b.slots().size()).sum();
        return "arena " + bytes(arenaBytes) + " for " + values + " intermediate" + (values == 1 ? "" : "s") + " (" + bytes(liveBytes)
                + " live at most, " + bytes(naiveBytes) + " one buffer each, " + inPlace + " in place), results " + bytes(resultBytes) + " per run";
    }

    static String bytes(long b) {
        if (b < 1024) return b + " B";
        if (b < 1024 * 1024) return String.format(java.util.Locale.ROOT, "%.1f KiB", b / 1024.0);
        return String.format(java.util.Locale.ROOT, "%.1f MiB", b / (1024.0 * 1024));
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("memory plan: ").append(summary()).append('\n');
        for (Buffer b : buffers) {
            sb.append("  [").append(b.offset()).append(", ").append(b.offset() + b.bytes()).append(") launches ").append(b.firstLaunch())
                    .append("..").append(b.lastLaunch()).append(" slots ").append(b.slots()).append('\n');
        }
        return sb.toString();
    }
}
