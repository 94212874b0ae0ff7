package dev.kiln.opt.npu;

import dev.kiln.Backend;
import dev.kiln.cache.Artifact;
import dev.kiln.cache.CacheKey;
import dev.kiln.cache.KernelCache;
import dev.kiln.cache.KilnVersion;
import dev.kiln.ir.Graph;
import dev.kiln.npu.codegen.TileLoopCompiler;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.opt.Pipeline;
import dev.kiln.ops.TensorMeta;
import dev.kiln.trace.GraphCompiler;
import dev.kiln.trace.GraphExecutable;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.LongAdder;

/**
 * The NPU backend: the standard optimisation pipeline, pointwise fusion, lowering to a
 * {@link KernelProgram}, run by an {@link NpuExecutable} on this machine's device.
 *
 * <p>Kernel programs go through the {@link KernelCache}, keyed by the graph's hash, its
 * input signature, the device, the compiler version and the compile options: on a hit
 * (in memory, or on disk from an earlier JVM) the program is read back and run, and no
 * pass or lowering runs again. A cached program that cannot be read is reported and
 * recompiled. The artifact also holds the class bytes of the generated tile loop of every
 * fused launch and matmul epilogue ({@code tile-loops/<launch>.class}), defined on a hit
 * without generating them.
 */
public final class NpuGraphCompiler implements GraphCompiler {
    /**
     * Changes whenever lowering or the program format would produce a different program for
     * the same graph: the format, the Kiln version and a fingerprint of the compiler's code.
     */
    static final String COMPILER_VERSION = "npu-compiler 1; " + KernelProgram.FORMAT + "; kiln " + KilnVersion.VALUE
            + "; code " + CompilerFingerprint.VALUE;
    private static final String OPTIONS = "pipeline=standard+merge-sibling-matmuls; fusion=pointwise,matmul-epilogue";
    /** Made on first use: the first {@link System#getLogger} of a JVM starts the logging framework (13 to 17 ms). */
    private static final class Log {
        static final System.Logger LOG = System.getLogger("dev.kiln.npu");
    }

    /** Process-wide counts of how compiled graphs were obtained, for the demo and explain. */
    public record Counts(long compiles, long memoryHits, long diskHits, double compileMillis) {}

    private static final LongAdder COMPILES = new LongAdder(), MEMORY_HITS = new LongAdder(), DISK_HITS = new LongAdder(),
            COMPILE_NANOS = new LongAdder();

    private final NpuDevice device;
    private final KernelCache cache;

    /** For {@link java.util.ServiceLoader}: the current machine's device and the cache the environment configures. */
    public NpuGraphCompiler() { this(NpuDevice.current(), KernelCache.shared()); }

    public NpuGraphCompiler(NpuDevice device, KernelCache cache) {
        this.device = device;
        this.cache = cache;
    }

    @Override
    public Backend backend() { return Backend.NPU; }

    /**
     * Links what a warm start's first load runs for the first time, beyond this class's own
     * set-up (the code fingerprint, the kernel cache): the entry codec, the device's text
     * form, and the tile programs' text form and value methods, by which generated loops are
     * named and found. Records' generated equals and hashCode are bootstrapped on their first
     * call, 1 to 15 ms each in a fresh JVM.
     */
    @Override
    public void prepare() {
        KernelCache.exerciseCodec();
        TileProgram p = everyTileInstruction(), q = TileProgram.parse(p.toText());
        if (!p.equals(q) || p.hashCode() != q.hashCode()) throw new IllegalStateException("a tile program's text does not give it back: " + p);
        device.toString();
    }

    /** A small tile program with one instruction of each kind. */
    static TileProgram everyTileInstruction() {
        return new TileProgram(List.of(new TileProgram.InputSpec(DType.FLOAT32, false), new TileProgram.InputSpec(DType.FLOAT32, true),
                new TileProgram.InputSpec(DType.BOOL, false)), 1, 8, List.of(
                new TileInstr.Broadcast(1, 0), new TileInstr.Constant(2f, 1), new TileInstr.Load(0, 2), new TileInstr.Load(2, 3),
                new TileInstr.Binary(BinaryFn.MUL, 2, 0, 4), new TileInstr.Unary(UnaryFn.EXP, 4, 5),
                new TileInstr.Clamp(-1f, 1f, 5, 6), new TileInstr.Where(3, 6, 1, 7), new TileInstr.Store(7, 0)));
    }

    public static Counts counts() {
        return new Counts(COMPILES.sum(), MEMORY_HITS.sum(), DISK_HITS.sum(), COMPILE_NANOS.sum() / 1e6);
    }

    /**
     * The NPU's passes for a graph whose inputs at {@code weights} are frozen weights: the
     * standard pipeline, sibling linear layers merged into one matmul, and unsqueezes moved
     * above the cheap pointwise ops they read (so fusion computes those per element).
     */
    static Pipeline pipeline(Set<Integer> weights) {
        List<dev.kiln.opt.GraphPass> passes = new java.util.ArrayList<>(Pipeline.standard().passes());
        passes.add(new MergeSiblingMatmuls(weights));
        passes.add(new MoveUnitReshapeAbovePointwise());
        return new Pipeline(passes, Pipeline.DEFAULT_MAX_ROUNDS);
    }

    /** The kernel program for {@code g}, compiled afresh. */
    public KernelProgram lower(Graph g) {
        return Lowering.lower(pipeline(Set.of()).run(g).graph(), device);
    }

    /** The cache key of {@code g} on this compiler's device. */
    public CacheKey key(Graph g) { return key(g, Set.of()); }

    /** The cache key of {@code g} with frozen weights at {@code weights}, which change the program. */
    public CacheKey key(Graph g, Set<Integer> weights) {
        return CacheKey.ofGraphHash(g.hash(), g.inputMetas().toString(), device.toString(), COMPILER_VERSION, options(OPTIONS, weights));
    }

    private static String options(String options, Set<Integer> weights) {
        return weights.isEmpty() ? options : options + "; frozen weights at inputs " + new java.util.TreeSet<>(weights);
    }

    @Override
    public NpuExecutable compile(Graph g) { return compile(g, Set.of()); }

    @Override
    public NpuExecutable compile(Graph g, Set<Integer> weights) {
        long lookupStart = System.nanoTime();
        CacheKey key = key(g, weights);
        long memoryHitsBefore = cache.memoryHits();
        Optional<Artifact> hit = cache.get(key);
        if (hit.isPresent()) {
            try {
                KernelProgram p = KernelProgram.parse(new String(hit.get().part("program"), StandardCharsets.UTF_8));
                defineTileLoops(p, hit.get());
                boolean memory = cache.memoryHits() > memoryHitsBefore;
                (memory ? MEMORY_HITS : DISK_HITS).increment();
                return new NpuExecutable(p, device, loadedFrom(memory, lookupStart), "not run: the program came from the kernel cache");
            } catch (RuntimeException e) {
                Log.LOG.log(System.Logger.Level.WARNING, "kernel cache: the program cached under " + key + " cannot be read ("
                        + e.getMessage() + "); compiling it again");
            }
        }
        long t0 = System.nanoTime();
        Pipeline.Result optimised = pipeline(weights).run(g);
        KernelProgram p = Lowering.lower(optimised.graph(), device, weights);
        COMPILE_NANOS.add(System.nanoTime() - t0);
        COMPILES.increment();
        Map<String, byte[]> parts = new LinkedHashMap<>();
        parts.put("program", p.toText().getBytes(StandardCharsets.UTF_8));
        parts.putAll(tileLoopParts(p));
        cache.put(key, Artifact.of(parts, Map.of("graph", g.hash())));
        return new NpuExecutable(p, device, "compiled in " + millis(System.nanoTime() - t0) + " ms",
                optimised.explain().strip());
    }

    private static final String FAMILY_OPTIONS = OPTIONS + "; one program for every size";
    private static final String FAMILY_PROGRAM_PART = "programs/";

    /**
     * Lowers each sample graph and fits one {@link ProgramFamily} to their programs. The
     * sample programs are cached together under a key over all sample graphs, so a later JVM
     * that traces the same samples gets the family without running a pass.
     */
    @Override
    public Optional<GraphExecutable> compileFamily(List<Graph> graphs, long[] base) { return compileFamily(graphs, base, Set.of()); }

    @Override
    public Optional<GraphExecutable> compileFamily(List<Graph> graphs, long[] base, Set<Integer> weights) {
        long lookupStart = System.nanoTime();
        List<List<TensorMeta>> inputs = graphs.stream().map(Graph::inputMetas).toList();
        CacheKey key = familyKey(graphs, weights);
        long memoryHitsBefore = cache.memoryHits();
        Optional<Artifact> hit = cache.get(key);
        if (hit.isPresent()) {
            try {
                List<KernelProgram> programs = new ArrayList<>();
                for (int i = 0; i < graphs.size(); i++) {
                    programs.add(KernelProgram.parse(new String(hit.get().part(FAMILY_PROGRAM_PART + i), StandardCharsets.UTF_8)));
                }
                Optional<ProgramFamily> family = ProgramFamily.fit(programs, inputs, base);
                if (family.isEmpty()) throw new IllegalArgumentException("its programs no longer form one family");
                defineTileLoops(family.get().base(), hit.get());
                boolean memory = cache.memoryHits() > memoryHitsBefore;
                (memory ? MEMORY_HITS : DISK_HITS).increment();
                return Optional.of(new NpuExecutable(family.get(), device, loadedFrom(memory, lookupStart),
                        "not run: the program came from the kernel cache"));
            } catch (RuntimeException e) {
                Log.LOG.log(System.Logger.Level.WARNING, "kernel cache: the programs cached under " + key + " cannot be read ("
                        + e.getMessage() + "); compiling them again");
            }
        }
        long t0 = System.nanoTime();
        // What the passes changed, as explain shows it, is that of the first sample.
        String[] passes = {null};
        Optional<ProgramFamily> family = ProgramFamily.fitChecked(graphs, base, g -> {
            Pipeline.Result optimised = pipeline(weights).run(g);
            if (passes[0] == null) passes[0] = optimised.explain().strip();
            return Lowering.lower(optimised.graph(), device, weights);
        });
        COMPILE_NANOS.add(System.nanoTime() - t0);
        COMPILES.increment();
        if (family.isEmpty()) return Optional.empty();
        Map<String, byte[]> parts = new LinkedHashMap<>();
        List<KernelProgram> samples = family.get().samples();
        for (int i = 0; i < samples.size(); i++) parts.put(FAMILY_PROGRAM_PART + i, samples.get(i).toText().getBytes(StandardCharsets.UTF_8));
        parts.putAll(tileLoopParts(family.get().base()));
        cache.put(key, Artifact.of(parts, Map.of("graph", graphs.getFirst().hash(), "samples", Integer.toString(graphs.size()))));
        return Optional.of(new NpuExecutable(family.get(), device, "compiled at " + graphs.size()
                + " sample sizes and checked at distant ones, into one program in " + millis(System.nanoTime() - t0) + " ms", passes[0]));
    }

    /** The origin line of a program from the cache, looked up since {@code lookupStart}. */
    private static String loadedFrom(boolean memory, long lookupStart) {
        return "kernel cache " + (memory ? "memory" : "disk") + " hit, key and load " + millis(System.nanoTime() - lookupStart) + " ms";
    }

    /**
     * Nanoseconds as milliseconds to one decimal, as {@code %.1f} would print them: a JVM's
     * first {@code String.format} costs about 5 ms, and this one sat on the warm path.
     */
    static String millis(long nanos) {
        long tenths = Math.round(nanos / 100_000.0);
        return tenths / 10 + "." + tenths % 10;
    }

    /** The cache key of a family: every sample graph and its inputs. */
    CacheKey familyKey(List<Graph> graphs, Set<Integer> weights) {
        StringBuilder hashes = new StringBuilder(), signatures = new StringBuilder();
        for (Graph g : graphs) {
            hashes.append(g.hash()).append('\n');
            signatures.append(signatures.isEmpty() ? "" : " | ").append(g.inputMetas());
        }
        return CacheKey.of(hashes.toString(), signatures.toString(), device.toString(), COMPILER_VERSION, options(FAMILY_OPTIONS, weights));
    }

    private static final String TILE_LOOP_PART = "tile-loops/";

    /** The class bytes of each fused launch's and each matmul epilogue's generated tile loop, stored next to the program. */
    private static Map<String, byte[]> tileLoopParts(KernelProgram p) {
        Map<String, byte[]> parts = new LinkedHashMap<>();
        for (int i = 0; i < p.launches().size(); i++) {
            TileProgram loop = tileLoopOf(p.launches().get(i));
            if (loop != null) parts.put(TILE_LOOP_PART + i + ".class", TileLoopCompiler.load(loop).classBytes());
        }
        return parts;
    }

    /** Defines the cached tile loops, so that the kernels of a cache hit load them rather than generate them again. */
    private static void defineTileLoops(KernelProgram p, Artifact a) {
        for (int i = 0; i < p.launches().size(); i++) {
            String part = TILE_LOOP_PART + i + ".class";
            TileProgram loop = tileLoopOf(p.launches().get(i));
            if (loop != null && a.partNames().contains(part)) TileLoopCompiler.define(loop, a.part(part));
        }
    }

    /** The tile program a launch runs as a generated loop: a fused kernel's, or a matmul's epilogue; null for the rest. */
    private static TileProgram tileLoopOf(KernelProgram.Launch l) {
        return switch (l) {
            case KernelProgram.Fused f -> f.program();
            case KernelProgram.MatMulFused m -> m.epilogue().program();
            case KernelProgram.Eager e -> null;
            case KernelProgram.Transfer t -> null;
        };
    }
}
