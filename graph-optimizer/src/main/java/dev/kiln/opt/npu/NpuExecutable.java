package dev.kiln.opt.npu;

import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.fused.FusedKernel;
import dev.kiln.npu.fused.ViewTransfer;
import dev.kiln.npu.kernels.MatMul;
import dev.kiln.npu.kernels.gemm.WeightPanels;
import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.GraphExecutable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Runs a {@link KernelProgram}: fused launches and memory transfers on the virtual NPU,
 * the rest on the eager kernels. Intermediate values live in an arena laid out by a
 * {@link MemoryPlan} (made on the first run for the inputs' shapes); values returned to
 * the caller get fresh memory. With {@code -Dkiln.npu.arena=false} every launch allocates its outputs afresh
 * instead, as before memory planning (for comparisons).
 */
public final class NpuExecutable implements GraphExecutable {
    private static final boolean PLAN_BY_DEFAULT = !"false".equals(System.getProperty("kiln.npu.arena"));

    /**
     * What one launch of a run cost: its time; the DRAM bytes the DMA engine counted (fused
     * kernels and transfers); and the bytes of the operands handed to kernels that do not go
     * through the DMA engine (eager kernels), an estimate from operand sizes, not a count. A
     * view that needs no copy moves nothing. {@code callerGathered} is the part of the DMA
     * count that gathered a non-contiguous caller input for a fused kernel or a view (see {@link #run}).
     */
    public record LaunchCost(long nanos, long dmaRead, long dmaWritten, long operandRead, long operandWritten, long callerGathered) {
        public long bytes() { return dmaRead + dmaWritten + operandRead + operandWritten; }
    }

    /**
     * A program at one set of sizes: its fused kernels, each slot's last reader, which slots
     * are the caller's inputs or views of them, and its arenas.
     */
    private static final class Instance {
        final KernelProgram program;
        final FusedKernel[] kernels;
        final int[] lastUse;
        final boolean[] callerMemory;
        /** The launches that depend on frozen weights alone, split off; null when there are none. */
        final Hoisting hoisting;
        /**
         * Per launch: where a matmul whose right operand is the caller's memory (a weight, or a
         * view of one) keeps it packed; null for other launches. Shared by the instances of
         * every size, whose launches are the same.
         */
        final WeightPanels[] panelSites;
        /** How each launch runs. */
        final Step[] steps;
        volatile ArenaPool arenas;

        Instance(KernelProgram program, FusedKernel[] kernels) {
            this(program, kernels, true, null);
        }

        /** An instance at other sizes of {@code base}'s program, sharing its panel sites. */
        Instance(KernelProgram program, FusedKernel[] kernels, Instance base) {
            this(program, kernels, true, base.program.launches().size() == program.launches().size() ? base.panelSites : null);
        }

        private Instance(KernelProgram program, FusedKernel[] kernels, boolean hoist, WeightPanels[] sites) {
            this.program = program;
            this.kernels = kernels;
            this.hoisting = hoist ? Hoisting.of(program, kernels) : null;
            List<KernelProgram.Launch> launches = program.launches();
            this.lastUse = new int[program.slots()];
            for (int i = 0; i < launches.size(); i++) for (int s : launches.get(i).in()) lastUse[s] = i;
            for (int s : program.outputs()) lastUse[s] = Integer.MAX_VALUE;
            this.callerMemory = new boolean[program.slots()];
            for (int s : program.inputs()) callerMemory[s] = true;
            for (KernelProgram.Launch l : launches) {
                if (l instanceof KernelProgram.Eager e && e.op() instanceof Op.ViewOp) callerMemory[l.out().getFirst()] = callerMemory[l.in().getFirst()];
                if (l instanceof KernelProgram.Eager e && e.op() instanceof Op.InPlace ip) {
                    for (int k = 0; k < l.out().size(); k++) callerMemory[l.out().get(k)] = callerMemory[l.in().get(ip.overwrites().get(k))];
                }
            }
            this.panelSites = sites != null ? sites : panelSites(launches, callerMemory);
            this.steps = new Step[launches.size()];
            for (int i = 0; i < steps.length; i++) steps[i] = Step.of(launches.get(i), kernels[i], panelSites[i]);
        }

        private static WeightPanels[] panelSites(List<KernelProgram.Launch> launches, boolean[] callerMemory) {
            WeightPanels[] sites = new WeightPanels[launches.size()];
            for (int i = 0; i < sites.length; i++) {
                KernelProgram.Launch l = launches.get(i);
                boolean matmul = l instanceof KernelProgram.MatMulFused || l instanceof KernelProgram.Eager e && e.op() instanceof Op.MatMul;
                if (matmul && callerMemory[l.in().get(1)]) sites[i] = new WeightPanels();
            }
            return sites;
        }
    }

    /**
     * A program's constants (launches without inputs, such as {@code arange}, and what is
     * computed from them) and the values of frozen weights computed from them alone run as
     * their own program ({@code once}): at the first call, and again whenever the bound weight
     * tensors change (another tensor, or a {@linkplain dev.kiln.tensor.Storage#markWritten
     * marked write}). The rest ({@code main}) reads their results as extra inputs; they live
     * outside the arena. A value the caller gets back, or a view of one, is never hoisted: every
     * call returns memory of its own.
     */
    private static final class Hoisting {
        /** The weights' positions among the program's inputs. */
        final int[] weightPositions;
        final Instance once, main;
        private volatile Computed computed;

        /** What {@code once} gave for these weight tensors (compared by identity) at these storage versions. */
        private record Computed(Tensor[] weights, int[] versions, Tensor[] values) {}

        private Hoisting(int[] weightPositions, Instance once, Instance main) {
            this.weightPositions = weightPositions;
            this.once = once;
            this.main = main;
        }

        static Hoisting of(KernelProgram p, FusedKernel[] kernels) {
            List<KernelProgram.Launch> launches = p.launches();
            // Values updated in place change every call: neither they (a weight such as a captured KV cache, or
            // a value computed once that would keep the updates) nor what is read from them are computed once.
            boolean[] updated = new boolean[p.slots()];
            for (KernelProgram.Launch l : launches) {
                if (l instanceof KernelProgram.Eager e && e.op() instanceof Op.InPlace ip) for (int k : ip.overwrites()) updated[e.in().get(k)] = true;
            }
            // The values the caller gets back or that are updated in place, and those they view.
            boolean[] returned = updated.clone();
            for (int s : p.outputs()) returned[s] = true;
            for (int i = launches.size() - 1; i >= 0; i--) {
                if (launches.get(i) instanceof KernelProgram.Eager e && e.op() instanceof Op.ViewOp && returned[e.out().getFirst()]) {
                    returned[e.in().getFirst()] = true;
                }
            }
            boolean[] fixed = new boolean[p.slots()];
            for (int w : p.weights()) fixed[w] = !updated[w];
            List<Integer> onceIdx = new ArrayList<>(), mainIdx = new ArrayList<>();
            // Loops, not streams: each lambda costs a fresh JVM a generated class on every warm start's path.
            for (int i = 0; i < launches.size(); i++) {
                KernelProgram.Launch l = launches.get(i);
                boolean hoisted = true;
                for (int s : l.in()) hoisted &= fixed[s];
                for (int s : l.out()) hoisted &= !returned[s];
                if (hoisted) for (int s : l.out()) fixed[s] = true;
                (hoisted ? onceIdx : mainIdx).add(i);
            }
            if (onceIdx.isEmpty()) return null;
            // What the rest reads of the hoisted results: the main program's extra inputs.
            java.util.Set<Integer> produced = new java.util.TreeSet<>();
            for (int i : onceIdx) produced.addAll(launches.get(i).out());
            java.util.Set<Integer> needed = new java.util.TreeSet<>();
            for (int i : mainIdx) for (int s : launches.get(i).in()) if (produced.contains(s)) needed.add(s);
            if (needed.isEmpty()) return null;
            List<Integer> extra = List.copyOf(needed);
            KernelProgram once = new KernelProgram(p.slots(), p.inputs(), pick(launches, onceIdx), extra);
            List<Integer> mainInputs = new ArrayList<>(p.inputs());
            mainInputs.addAll(extra);
            KernelProgram main = new KernelProgram(p.slots(), mainInputs, pick(launches, mainIdx), p.outputs());
            // The weights the hoisted launches read: an in-place update of another (a KV cache) must not recompute them.
            java.util.Set<Integer> read = new java.util.HashSet<>();
            for (int i : onceIdx) read.addAll(launches.get(i).in());
            List<Integer> positionList = new ArrayList<>();
            for (int w : p.weights()) if (read.contains(w)) positionList.add(p.inputs().indexOf(w));
            int[] positions = new int[positionList.size()];
            for (int i = 0; i < positions.length; i++) positions[i] = positionList.get(i);
            return new Hoisting(positions, new Instance(once, pick(kernels, onceIdx), false, null),
                    new Instance(main, pick(kernels, mainIdx), false, null));
        }

        private static List<KernelProgram.Launch> pick(List<KernelProgram.Launch> launches, List<Integer> indices) {
            List<KernelProgram.Launch> out = new ArrayList<>(indices.size());
            for (int i : indices) out.add(launches.get(i));
            return out;
        }

        private static FusedKernel[] pick(FusedKernel[] kernels, List<Integer> indices) {
            FusedKernel[] out = new FusedKernel[indices.size()];
            for (int i = 0; i < out.length; i++) out[i] = kernels[indices.get(i)];
            return out;
        }

        /** The hoisted results for the weights bound in {@code inputs}, computed when they are not those of the last call. */
        Tensor[] values(Tensor[] inputs, NpuExecutable exe) {
            Computed c = computed;
            if (c != null && sameWeights(c, inputs)) return c.values();
            synchronized (this) {
                c = computed;
                if (c != null && sameWeights(c, inputs)) return c.values();
                Tensor[] weights = new Tensor[weightPositions.length];
                int[] versions = new int[weightPositions.length];
                for (int i = 0; i < weights.length; i++) {
                    weights[i] = inputs[weightPositions[i]];
                    versions[i] = weights[i].storage().version();
                }
                Tensor[] values = exe.run(once, inputs, null, null, false);
                computed = new Computed(weights, versions, values);
                return values;
            }
        }

        private boolean sameWeights(Computed c, Tensor[] inputs) {
            for (int i = 0; i < c.weights().length; i++) {
                Tensor bound = inputs[weightPositions[i]];
                if (c.weights()[i] != bound || c.versions()[i] != bound.storage().version()) return false;
            }
            return true;
        }
    }

    /** Programs at the sizes of the most recent runs of a family, least recently used dropped first. */
    private static final int FAMILY_INSTANCES = 16;

    private final ProgramFamily family;
    private final NpuDevice device;
    private final Instance baseInstance;
    private final LinkedHashMap<List<Long>, Instance> instances = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<List<Long>, Instance> e) { return size() > FAMILY_INSTANCES; }
    };
    private volatile Instance lastInstance;
    private final boolean planMemory;
    private volatile List<LaunchTraffic> lastTraffic = List.of();
    /** The program whose launches the last run's costs are of: an instance's, or its part without the hoisted launches. */
    private volatile Instance lastRun;
    private volatile LaunchCost[] lastCosts;
    private final String origin;
    private final String passes;

    public NpuExecutable(KernelProgram program, NpuDevice device) { this(program, device, "compiled", ""); }

    /**
     * {@code origin} says how the program was obtained (compiled, or a memory or disk hit of
     * the kernel cache) and {@code passes} what the optimisation passes changed.
     */
    public NpuExecutable(KernelProgram program, NpuDevice device, String origin, String passes) {
        this(program, device, origin, passes, PLAN_BY_DEFAULT);
    }

    /** As above; {@code planMemory} false allocates each launch's outputs afresh. */
    public NpuExecutable(KernelProgram program, NpuDevice device, String origin, String passes, boolean planMemory) {
        this(null, program, device, origin, passes, planMemory);
    }

    /**
     * One executable for every size of {@code family}: each run binds the symbols from its
     * inputs' dimensions and runs the family's program at those sizes.
     */
    public NpuExecutable(ProgramFamily family, NpuDevice device, String origin, String passes) {
        this(family, family.base(), device, origin, passes, PLAN_BY_DEFAULT);
    }

    private NpuExecutable(ProgramFamily family, KernelProgram program, NpuDevice device, String origin, String passes, boolean planMemory) {
        this.family = family;
        this.device = device;
        this.origin = origin;
        this.passes = passes;
        this.planMemory = planMemory;
        List<KernelProgram.Launch> launches = program.launches();
        FusedKernel[] kernels = new FusedKernel[launches.size()];
        for (int i = 0; i < launches.size(); i++) {
            if (launches.get(i) instanceof KernelProgram.Fused f) kernels[i] = new FusedKernel(f.name(), f.program(), device);
        }
        this.baseInstance = new Instance(program, kernels);
        this.lastInstance = baseInstance;
    }

    /** The part of an instance that runs with planned memory: all of it, or what the hoisted launches leave. */
    private static Instance planned(Instance i) { return i.hoisting != null ? i.hoisting.main : i; }

    /** The program of the most recent run (before any run: the program compiled, at the sizes it was compiled for). */
    public KernelProgram program() { return lastInstance.program; }

    /** The family when this executable serves every size of a symbolic signature, else empty. */
    public Optional<ProgramFamily> family() { return Optional.ofNullable(family); }

    /** The memory plan of the most recent run's input shapes; empty before the first run or without planning. */
    public Optional<MemoryPlan> memoryPlan() {
        ArenaPool a = planned(lastInstance).arenas;
        return a == null ? Optional.empty() : Optional.of(a.plan());
    }

    /** Arenas allocated so far for the most recent run's sizes: runs reuse them, concurrent runs take one each. */
    int arenasCreated() {
        ArenaPool a = planned(lastInstance).arenas;
        return a == null ? 0 : a.created();
    }

    /** The DRAM traffic of each fused launch and transfer of the most recent run, in launch order. */
    public List<LaunchTraffic> lastRunTraffic() { return lastTraffic; }

    /** What each launch of the most recent run cost, in launch order; empty before the first run. */
    public List<LaunchCost> lastRunCosts() {
        LaunchCost[] c = lastCosts;
        return c == null ? List.of() : List.of(c);
    }

    @Override
    public Tensor[] run(Tensor[] inputs) {
        List<TensorMeta> metas = new ArrayList<>(inputs.length);
        for (Tensor t : inputs) metas.add(t.meta());
        Instance instance = instanceFor(metas);
        lastInstance = instance;
        Instance stage = instance;
        Tensor[] stageInputs = inputs;
        if (instance.hoisting != null) {
            Tensor[] hoisted = instance.hoisting.values(inputs, this);
            stage = instance.hoisting.main;
            stageInputs = Arrays.copyOf(inputs, inputs.length + hoisted.length);
            System.arraycopy(hoisted, 0, stageInputs, inputs.length, hoisted.length);
            for (Tensor t : hoisted) metas.add(t.meta());
        }
        ArenaPool pool = planMemory ? arenasFor(stage, metas) : null;
        ArenaPool.Arena arena = pool == null || pool.plan().buffers().isEmpty() ? null : pool.take();
        try {
            return run(stage, stageInputs, pool == null ? null : pool.plan(), arena, true);
        } finally {
            if (arena != null) pool.give(arena);
        }
    }

    /**
     * The program at the inputs' sizes: the one compiled, or for a family the program at the
     * symbols the inputs bind, checked by shape inference over every launch before it is kept.
     */
    private Instance instanceFor(List<TensorMeta> metas) {
        if (family == null) return baseInstance;
        List<Long> key = Arrays.stream(family.bind(metas)).boxed().toList();
        synchronized (instances) {
            Instance known = instances.get(key);
            if (known != null) return known;
        }
        KernelProgram p;
        try {
            p = family.at(key.stream().mapToLong(Long::longValue).toArray());
            MemoryPlan.of(p, metas);
        } catch (RuntimeException e) {
            throw new KilnException("the NPU program of this symbolic signature does not hold at sizes " + key + " ("
                    + family.describeBindings() + "): " + e.getMessage(), e);
        }
        FusedKernel[] kernels = new FusedKernel[p.launches().size()];
        for (int i = 0; i < kernels.length; i++) {
            if (p.launches().get(i) instanceof KernelProgram.Fused f) {
                FusedKernel shared = baseInstance.kernels[i];
                kernels[i] = shared.program().equals(f.program()) ? shared : new FusedKernel(f.name(), f.program(), device);
            }
        }
        Instance made = new Instance(p, kernels, baseInstance);
        synchronized (instances) {
            Instance raced = instances.putIfAbsent(key, made);
            return raced != null ? raced : made;
        }
    }

    /** The arenas of the plan for these inputs' shapes, planning anew when they differ from the last run's. */
    private static ArenaPool arenasFor(Instance instance, List<TensorMeta> metas) {
        ArenaPool a = instance.arenas;
        if (a == null || !a.plan().fits(metas)) {
            a = new ArenaPool(MemoryPlan.of(instance.program, metas));
            instance.arenas = a;
        }
        return a;
    }

    /**
     * Runs the launches in order. Lowering puts a transfer before every reader that needs a
     * contiguous value it cannot read in place, taking the graph's inputs to be contiguous.
     * The one thing it cannot know is the caller's inputs' layout: a program is cached by
     * the graph and its input shapes, and serves a transposed input as well. A fused kernel
     * reads such an input through its strides; a matmul epilogue or a view that cannot be
     * taken given it (or a view of it) has it gathered by the DMA engine first, counted in its
     * launch. Any other non-contiguous input reaching them is a lowering bug.
     */
    private Tensor[] run(Instance instance, Tensor[] inputs, MemoryPlan plan, ArenaPool.Arena arena, boolean recordCosts) {
        KernelProgram program = instance.program;
        int[] lastUse = instance.lastUse;
        Tensor[] slots = new Tensor[program.slots()];
        for (int i = 0; i < inputs.length; i++) slots[program.inputs().get(i)] = inputs[i];
        Frame frame = new Frame(instance, plan, arena);
        Meter meter = new Meter();
        List<KernelProgram.Launch> launches = program.launches();
        LaunchCost[] costs = new LaunchCost[launches.size()];
        for (int i = 0; i < launches.size(); i++) {
            long t0 = System.nanoTime();
            KernelProgram.Launch l = launches.get(i);
            Tensor[] args = new Tensor[l.in().size()];
            for (int k = 0; k < args.length; k++) args[k] = slots[l.in().get(k)];
            meter.startLaunch();
            Tensor[] results = instance.steps[i].run(i, args, frame, meter);
            for (int k = 0; k < results.length; k++) slots[l.out().get(k)] = results[k];
            for (int s : l.in()) if (lastUse[s] == i) slots[s] = null;
            costs[i] = new LaunchCost(System.nanoTime() - t0, meter.dmaRead, meter.dmaWritten, meter.operandRead, meter.operandWritten,
                    meter.callerGathered);
        }
        if (recordCosts) {
            lastTraffic = List.copyOf(meter.traffic);
            lastCosts = costs;
            lastRun = instance;
        }
        Tensor[] out = new Tensor[program.outputs().size()];
        for (int i = 0; i < out.length; i++) out[i] = slots[program.outputs().get(i)];
        return out;
    }

    /** What a run needs besides a launch's operands: the instance, and the arena its memory plan lays out (null when unplanned). */
    private record Frame(Instance instance, MemoryPlan plan, ArenaPool.Arena arena) {}

    /**
     * What the launch being run moved, filled in by its {@link Step}: the bytes the DMA engine
     * counted, the operand bytes of eager kernels, and the part of the DMA bytes that gathered
     * caller views; and the run's fused launches and transfers, in order.
     */
    private static final class Meter {
        long dmaRead, dmaWritten, operandRead, operandWritten, callerGathered;
        final List<LaunchTraffic> traffic = new ArrayList<>();

        void startLaunch() {
            dmaRead = dmaWritten = operandRead = operandWritten = callerGathered = 0;
        }

        void gathered(LaunchTraffic t) {
            callerGathered = t.bytes();
            dmaRead = t.bytesRead();
            dmaWritten = t.bytesWritten();
        }

        /** The traffic of a fused kernel or a transfer, the launch's own and one of the run's. */
        void dma(LaunchTraffic t) {
            dmaRead = t.bytesRead();
            dmaWritten = t.bytesWritten();
            traffic.add(t);
        }

        void operands(Tensor[] args, Tensor[] results) {
            operandRead = operandBytes(args);
            operandWritten = operandBytes(results);
        }
    }

    /**
     * How the command processor runs one launch; the steps are chosen once per program. Each
     * kind of launch is its own class behind this interface, so the launch loop calls them
     * instead of holding every kind's code: as one method, C2 compiled the loop with all of
     * it inlined in 300 to 500 ms each time, several times over (once per deoptimisation),
     * and meanwhile one of the two cores ran the block's kernels alone, W4 calls at twice their
     * time for seconds after a 10 s warm-up.
     */
    private sealed interface Step {
        /** Runs launch {@code i} on {@code args} (which it may replace with gathered copies); its results. */
        Tensor[] run(int i, Tensor[] args, Frame f, Meter m);

        static Step of(KernelProgram.Launch l, FusedKernel kernel, WeightPanels panels) {
            return switch (l) {
                case KernelProgram.Eager e when e.op() instanceof Op.ViewOp view -> new ViewStep(e, view);
                case KernelProgram.Eager e when e.op() instanceof Op.InPlace inPlace -> new InPlaceStep(e, inPlace);
                case KernelProgram.Eager e when panels != null -> new PackedMatMulStep(e, panels);
                case KernelProgram.Eager e -> new EagerStep(e);
                case KernelProgram.Fused f -> new FusedStep(f, kernel);
                case KernelProgram.MatMulFused m -> new MatMulFusedStep(m, panels);
                case KernelProgram.Transfer t -> new TransferStep(t);
            };
        }
    }

    /** A view: moves nothing unless its input cannot be viewed that way and is gathered first. */
    private record ViewStep(KernelProgram.Eager launch, Op.ViewOp view) implements Step {
        @Override
        public Tensor[] run(int i, Tensor[] args, Frame f, Meter m) {
            if (view.view(args[0].layout()) == null) {
                if (!f.instance().callerMemory[launch.in().getFirst()]) {
                    throw new IllegalStateException("launch " + i + " (" + launch.op().name() + ") cannot view its input " + args[0].layout()
                            + " without a transfer before it");
                }
                Tensor gathered = Tensor.empty(args[0].dtype(), args[0].shape());
                m.gathered(ViewTransfer.run(launch.op().name(), args[0], gathered));
                args[0] = gathered;
            }
            return Dispatch.apply(launch.op(), args);
        }
    }

    /** An op that updates inputs in place: its outputs are those inputs, wherever they live. */
    private record InPlaceStep(KernelProgram.Eager launch, Op.InPlace op) implements Step {
        @Override
        public Tensor[] run(int i, Tensor[] args, Frame f, Meter m) {
            Tensor[] results = new Tensor[launch.out().size()];
            for (int k = 0; k < results.length; k++) results[k] = args[op.overwrites().get(k)];
            Dispatch.backend().execute(op, args, results);
            m.operands(args, results);
            return results;
        }
    }

    /** The backend's matmul, keeping the caller's weight packed at this launch. */
    private record PackedMatMulStep(KernelProgram.Eager launch, WeightPanels panels) implements Step {
        @Override
        public Tensor[] run(int i, Tensor[] args, Frame f, Meter m) {
            Tensor[] results = {f.plan() == null ? unplanned(launch.op(), args) : buffer(f, launch.out().getFirst())};
            MatMul.matmul(args[0], args[1], panels, results[0]);
            m.operands(args, results);
            return results;
        }
    }

    /** Any other eager op: into its planned buffers, or into memory of its own without a plan. */
    private record EagerStep(KernelProgram.Eager launch) implements Step {
        @Override
        public Tensor[] run(int i, Tensor[] args, Frame f, Meter m) {
            Tensor[] results;
            if (f.plan() == null) {
                results = Dispatch.apply(launch.op(), args);
            } else {
                results = new Tensor[launch.out().size()];
                for (int k = 0; k < results.length; k++) results[k] = buffer(f, launch.out().get(k));
                Dispatch.backend().execute(launch.op(), args, results);
            }
            m.operands(args, results);
            return results;
        }
    }

    /** A fused kernel: it reads its inputs through their strides, the caller's views too. */
    private record FusedStep(KernelProgram.Fused launch, FusedKernel kernel) implements Step {
        @Override
        public Tensor[] run(int i, Tensor[] args, Frame f, Meter m) {
            Tensor[] results = new Tensor[launch.out().size()];
            for (int k = 0; k < results.length; k++) results[k] = output(f, launch.out().get(k), DType.FLOAT32, launch.shape());
            m.dma(kernel.launch(args, results));
            return results;
        }
    }

    /** A matmul with its epilogue; it reads its two operands as strided views, the epilogue's row by row. */
    private record MatMulFusedStep(KernelProgram.MatMulFused launch, WeightPanels panels) implements Step {
        @Override
        public Tensor[] run(int i, Tensor[] args, Frame f, Meter m) {
            m.gathered(gatherCallerViews(launch.name(), i, f.instance(), launch, args));
            Tensor out = output(f, launch.out().getFirst(), DType.FLOAT32, launch.shape());
            MatMul.matmul(args[0], args[1], panels, out, launch.epilogue(), Arrays.copyOfRange(args, 2, args.length));
            Tensor[] results = {out};
            m.operands(args, results);
            return results;
        }
    }

    /** A memory transfer by the DMA engine. */
    private record TransferStep(KernelProgram.Transfer launch) implements Step {
        @Override
        public Tensor[] run(int i, Tensor[] args, Frame f, Meter m) {
            Tensor out = output(f, launch.out().getFirst(), launch.dtype(), launch.shape());
            m.dma(ViewTransfer.run("transfer", args[0], out));
            return new Tensor[] {out};
        }
    }

    /**
     * Gathers, by DMA, the caller's non-contiguous tensors among the epilogue operands of matmul
     * launch {@code launch} ({@code name}), {@code args[2..]}, which it reads as contiguous rows
     * (the GEMM reads its own two operands at any strides), replacing them in {@code args};
     * returns the bytes moved. Lowering takes the graph's inputs to be contiguous, but a program
     * cached for the same shapes may be given views: gathered here, the copy is counted with the
     * launch instead of made unseen inside the kernel. A non-contiguous value of the program's
     * own reaching such a launch is a lowering bug.
     */
    private static LaunchTraffic gatherCallerViews(String name, int launch, Instance instance, KernelProgram.Launch l, Tensor[] args) {
        long read = 0, written = 0;
        for (int k = 2; k < args.length; k++) {
            if (args[k].numel() == 1 || args[k].isContiguous()) continue;
            if (!instance.callerMemory[l.in().get(k)]) {
                throw new IllegalStateException(name + " (launch " + launch + ") is given a non-contiguous input " + k + " "
                        + args[k].layout() + " without a transfer before it");
            }
            Tensor gathered = Tensor.empty(args[k].dtype(), args[k].shape());
            LaunchTraffic t = ViewTransfer.run(name, args[k], gathered);
            read += t.bytesRead();
            written += t.bytesWritten();
            args[k] = gathered;
        }
        return new LaunchTraffic(name, read, written);
    }

    /** Where a launch writes a slot's value: its arena range, or fresh memory for a value returned to the caller. */
    private static Tensor buffer(Frame f, int slot) {
        MemoryPlan plan = f.plan();
        if (plan.placement(slot) == MemoryPlan.Placement.ARENA) return f.arena().tensors()[slot];
        TensorMeta m = plan.meta(slot);
        return Tensor.empty(m.dtype(), m.shape());
    }

    /** Where a launch writes a slot's value of {@code dtype} and {@code shape}: as {@link #buffer} says, or fresh memory without a plan. */
    private static Tensor output(Frame f, int slot, DType dtype, Shape shape) {
        return f.plan() == null ? Tensor.empty(dtype, shape) : buffer(f, slot);
    }

    /** Fresh memory for the one result of {@code op} on {@code args}, without a memory plan to say its shape. */
    private static Tensor unplanned(Op op, Tensor[] args) {
        List<TensorMeta> in = new ArrayList<>(args.length);
        for (Tensor t : args) in.add(t.meta());
        TensorMeta meta = op.infer(in).getFirst();
        return Tensor.empty(meta.dtype(), meta.shape());
    }

    /** The bytes of the elements the tensors address, each element once (a broadcast dimension counts once). */
    private static long operandBytes(Tensor... tensors) {
        long bytes = 0;
        for (Tensor t : tensors) {
            long elements = t.numel() == 0 ? 0 : 1;
            long[] strides = t.strides();
            for (int d = 0; d < t.rank(); d++) if (strides[d] != 0) elements *= t.size(d);
            bytes += elements * t.dtype().byteSize();
        }
        return bytes;
    }

    /**
     * The origin, the memory plan, then one line per launch with the last run's time and
     * DRAM bytes: counted by the DMA engine for fused kernels, from operand sizes for the rest.
     */
    @Override
    public String describe() {
        Instance instance = lastInstance;
        KernelProgram program = instance.program;
        long transfers = program.transfers();
        StringBuilder sb = new StringBuilder("npu program: ").append(program.launches().size()).append(" launches, ")
                .append(program.fusedLaunches()).append(" fused")
                .append(transfers == 0 ? "" : ", " + transfers + (transfers == 1 ? " transfer" : " transfers"))
                .append(" (").append(origin).append(")\n");
        if (family != null) {
            int sizes;
            synchronized (instances) {
                sizes = instances.size();
            }
            sb.append("  one program for every size: ").append(family.symbolicSizes()).append(" sizes computed at run time from ")
                    .append(family.describeBindings()).append("; ").append(sizes).append(sizes == 1 ? " size" : " sizes")
                    .append(" run so far, the last one below\n");
            for (String line : family.symbolicLaunches()) sb.append("    sizes at run time: ").append(line).append('\n');
        }
        if (!passes.isEmpty()) for (String line : passes.split("\n")) sb.append("  passes: ").append(line).append('\n');
        if (instance.hoisting != null) {
            List<KernelProgram.Launch> once = instance.hoisting.once.program.launches();
            sb.append("  constants").append(program.weights().isEmpty() ? "" : " and frozen weights").append(": ").append(once.size())
                    .append(once.size() == 1 ? " launch runs" : " launches run")
                    .append(program.weights().isEmpty() ? " once (" : " once while the same weight tensors are bound (")
                    .append(once.stream().map(NpuExecutable::launchName).collect(java.util.stream.Collectors.joining(", ")))
                    .append("); the launches below are the rest\n");
        }
        Instance ran = lastRun != null && (lastRun == instance || instance.hoisting != null && lastRun == instance.hoisting.main) ? lastRun
                : instance.hoisting != null ? instance.hoisting.main : instance;
        program = ran.program;
        ArenaPool pool = ran.arenas;
        if (!planMemory) sb.append("  memory: not planned (every launch allocates its outputs)\n");
        else if (pool == null) sb.append("  memory: planned on the first run\n");
        else sb.append("  memory: peak ").append(pool.plan().summary()).append('\n');
        LaunchCost[] costs = lastRun == ran ? lastCosts : null;
        for (int i = 0; i < program.launches().size(); i++) {
            KernelProgram.Launch l = program.launches().get(i);
            String what = switch (l) {
                case KernelProgram.Eager e -> "eager " + e.op().name();
                case KernelProgram.Fused f -> "fused " + f.name() + " (" + f.program().instructions().size() + " tile instructions)";
                case KernelProgram.MatMulFused m -> "matmul " + m.name() + " with an epilogue ("
                        + m.epilogue().program().instructions().size() + " tile instructions)";
                case KernelProgram.Transfer t -> "transfer view -> contiguous " + t.dtype() + t.shape() + " (" + MemoryPlan.bytes(t.bytes()) + ")";
            };
            sb.append(String.format(Locale.ROOT, "  launch %d: %s", i, what));
            long packed = ran.panelSites[i] == null ? 0 : ran.panelSites[i].bytes();
            if (packed > 0) sb.append(" from its right operand packed in advance (").append(MemoryPlan.bytes(packed)).append(')');
            if (costs != null && i < costs.length) {
                LaunchCost c = costs[i];
                sb.append(String.format(Locale.ROOT, ", %.3f ms", c.nanos() / 1e6));
                if (l instanceof KernelProgram.Fused || l instanceof KernelProgram.Transfer || c.dmaRead() + c.dmaWritten() > 0) {
                    sb.append(", DRAM read ").append(c.dmaRead()).append(" B, written ").append(c.dmaWritten()).append(" B (DMA count");
                    if (c.callerGathered() > 0) sb.append(", ").append(c.callerGathered()).append(" B of it gathering a non-contiguous input");
                    sb.append(')');
                } else if (c.bytes() == 0) {
                    sb.append(", no DRAM traffic (a view)");
                } else {
                    sb.append(", DRAM read ").append(c.operandRead()).append(" B, written ").append(c.operandWritten()).append(" B (operand sizes)");
                }
            }
            sb.append('\n');
        }
        if (costs != null) {
            long nanos = 0, bytes = 0;
            for (LaunchCost c : costs) {
                nanos += c.nanos();
                bytes += c.bytes();
            }
            sb.append(String.format(Locale.ROOT, "  last run: %.3f ms in launches, %d B of DRAM traffic%n", nanos / 1e6, bytes));
        }
        return sb.toString();
    }

    private static String launchName(KernelProgram.Launch l) {
        return switch (l) {
            case KernelProgram.Eager e -> e.op().name();
            case KernelProgram.Fused f -> f.name();
            case KernelProgram.MatMulFused m -> m.name();
            case KernelProgram.Transfer t -> "transfer " + t.dtype() + t.shape();
        };
    }

    @Override
    public String toString() { return "NpuExecutable" + Arrays.toString(baseInstance.kernels); }
}
