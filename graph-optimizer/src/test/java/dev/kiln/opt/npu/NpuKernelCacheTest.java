package dev.kiln.opt.npu;

import dev.kiln.cache.Artifact;
import dev.kiln.cache.CacheConfig;
import dev.kiln.cache.KernelCache;
import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.npu.codegen.TileLoopCompiler;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NpuKernelCacheTest {
    @TempDir
    Path dir;

    private static Tensor[] inputs() {
        return new Tensor[] {Tensor.randn(4, 1000), Tensor.scalar(1.5f), Tensor.scalar(-0.5f)};
    }

    private static float[] run(NpuExecutable e) { return e.run(inputs())[0].toFloatArray(); }

    @Test
    void aSecondCompilerFindsTheProgramOnDiskAndComputesTheSameBits() {
        Graph g = NpuBackendTest.w1Graph(1000);
        NpuGraphCompiler cold = new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.at(dir)));
        NpuGraphCompiler.Counts before = NpuGraphCompiler.counts();
        float[] first = run(cold.compile(g));
        NpuGraphCompiler.Counts afterCold = NpuGraphCompiler.counts();
        assertEquals(before.compiles() + 1, afterCold.compiles());

        // A new cache over the same directory stands for a new JVM: a disk hit, no compile.
        NpuGraphCompiler warm = new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.at(dir)));
        float[] second = run(warm.compile(g));
        NpuGraphCompiler.Counts afterWarm = NpuGraphCompiler.counts();
        assertEquals(afterCold.compiles(), afterWarm.compiles());
        assertEquals(afterCold.diskHits() + 1, afterWarm.diskHits());
        assertArrayEquals(first, second);

        warm.compile(g);
        assertEquals(afterWarm.memoryHits() + 1, NpuGraphCompiler.counts().memoryHits());
    }

    /** The inputs of a write of two tokens into caches [3, 2, 1, 4]: key [2, 1, 4], the two caches, slots int64[2]. */
    static List<ValueRef> cacheWriteInputs(GraphBuilder b) {
        return List.of(b.input(new TensorMeta(DType.FLOAT32, Shape.of(2, 1, 4))), b.input(new TensorMeta(DType.FLOAT32, Shape.of(3, 2, 1, 4))),
                b.input(new TensorMeta(DType.FLOAT32, Shape.of(3, 2, 1, 4))), b.input(new TensorMeta(DType.INT64, Shape.of(2))));
    }

    /** Writes k and -k into two caches [3, 2, 1, 4] in place, then returns twice the key cache and both caches. */
    private static Graph cacheWriteGraph() {
        GraphBuilder b = new GraphBuilder();
        List<ValueRef> in = cacheWriteInputs(b);
        ValueRef k = in.get(0), keys = in.get(1), values = in.get(2), slots = in.get(3);
        ValueRef negated = b.apply(new Op.Unary(UnaryFn.NEG), List.of(k)).getFirst();
        List<ValueRef> caches = b.apply(new Op.ReshapeAndCache(), List.of(k, negated, keys, values, slots));
        ValueRef doubled = b.apply(new Op.BinaryScalar(BinaryFn.MUL, 2, false, false), List.of(caches.get(0))).getFirst();
        return b.build(List.of(doubled, caches.get(0), caches.get(1)));
    }

    @Test
    void aProgramThatWritesCachesInPlaceDoesSoWhenLoadedFromDisk() {
        Graph g = cacheWriteGraph();
        float[][] results = new float[2][];
        for (int jvm = 0; jvm < 2; jvm++) {
            NpuGraphCompiler.Counts before = NpuGraphCompiler.counts();
            NpuExecutable exe = new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.at(dir))).compile(g);
            assertEquals(before.diskHits() + jvm, NpuGraphCompiler.counts().diskHits(), "the second compiler loads the program");
            Tensor keys = Tensor.zeros(3, 2, 1, 4), values = Tensor.zeros(3, 2, 1, 4);
            Tensor[] out = exe.run(new Tensor[] {Tensor.randn(5, 2, 1, 4), keys, values, Tensor.of(new long[] {4, 1}, 2)});
            assertTrue(out[1].storage() == keys.storage() && out[2].storage() == values.storage(), "the caches are written where they are");
            float[] k = Tensor.randn(5, 2, 1, 4).toFloatArray(), written = keys.toFloatArray();
            assertArrayEquals(Arrays.copyOfRange(k, 0, 4), Arrays.copyOfRange(written, 16, 20));
            assertArrayEquals(Arrays.copyOfRange(k, 4, 8), Arrays.copyOfRange(written, 4, 8));
            assertEquals(-k[0], values.toFloatArray()[16]);
            results[jvm] = out[0].toFloatArray();
        }
        assertArrayEquals(results[0], results[1]);
    }

    @Test
    void theCompilerVersionFingerprintsTheCompilersCode() {
        assertTrue(NpuGraphCompiler.COMPILER_VERSION.matches(".*; code [0-9a-f]{24}$"), NpuGraphCompiler.COMPILER_VERSION);
    }

    @Test
    void theKeyCoversTheGraphAndTheDevice() {
        NpuGraphCompiler a = new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.memoryOnly(1 << 20)));
        NpuDevice other = new NpuDevice(64 * 1024, NpuDevice.current().vectorBits(), 1, 1e10);
        NpuGraphCompiler b = new NpuGraphCompiler(other, KernelCache.open(CacheConfig.memoryOnly(1 << 20)));
        Graph g = NpuBackendTest.w1Graph(1000);
        assertEquals(a.key(g), a.key(NpuBackendTest.w1Graph(1000)));
        assertNotEquals(a.key(g), a.key(NpuBackendTest.w1Graph(1001)));
        assertNotEquals(a.key(g), b.key(g));
    }

    @Test
    void aCorruptedEntryIsRecompiledWithTheRightResult() throws IOException {
        Graph g = NpuBackendTest.w1Graph(1000);
        float[] expected = run(new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.at(dir))).compile(g));
        List<Path> entries;
        try (Stream<Path> walk = Files.walk(dir)) {
            entries = walk.filter(p -> p.toString().endsWith(".entry")).toList();
        }
        assertEquals(1, entries.size());
        byte[] bytes = Files.readAllBytes(entries.getFirst());
        bytes[bytes.length - 3] ^= 0x5a;
        Files.write(entries.getFirst(), bytes);

        long compiles = NpuGraphCompiler.counts().compiles();
        float[] again = run(new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.at(dir))).compile(g));
        assertEquals(compiles + 1, NpuGraphCompiler.counts().compiles(), "a corrupt entry is a miss, so the graph compiles again");
        assertArrayEquals(expected, again);
        assertTrue(Files.exists(entries.getFirst()), "the recompiled program is published again");
    }

    @Test
    void theArtifactCarriesTheClassOfEachFusedLaunchsTileLoop() {
        KernelCache cache = KernelCache.open(CacheConfig.memoryOnly(1 << 20));
        NpuGraphCompiler compiler = new NpuGraphCompiler(NpuDevice.current(), cache);
        Graph g = NpuBackendTest.w1Graph(1000);
        List<KernelProgram.Launch> launches = compiler.compile(g).program().launches();
        Artifact a = cache.get(compiler.key(g)).orElseThrow();
        int fused = 0;
        for (int i = 0; i < launches.size(); i++) {
            if (launches.get(i) instanceof KernelProgram.Fused f) {
                assertArrayEquals(TileLoopCompiler.generate(f.program()), a.part("tile-loops/" + i + ".class"));
                fused++;
            }
        }
        assertTrue(fused > 0, "W1 lowers to a fused launch");
        assertEquals(fused + 1, a.partNames().size(), a.partNames().toString());
    }

    @Test
    void theArtifactCarriesTheClassOfEachMatmulEpiloguesTileLoop() {
        KernelCache cache = KernelCache.open(CacheConfig.memoryOnly(1 << 20));
        NpuGraphCompiler compiler = new NpuGraphCompiler(NpuDevice.current(), cache);
        Graph g = FuseMatmulEpilogueTest.mlp(new dev.kiln.ir.GraphBuilder(), 8, 16, 32);
        List<KernelProgram.Launch> launches = compiler.compile(g).program().launches();
        Artifact a = cache.get(compiler.key(g)).orElseThrow();
        int epilogues = 0;
        for (int i = 0; i < launches.size(); i++) {
            if (launches.get(i) instanceof KernelProgram.MatMulFused m) {
                assertArrayEquals(TileLoopCompiler.generate(m.epilogue().program()), a.part("tile-loops/" + i + ".class"));
                epilogues++;
            }
        }
        assertEquals(2, epilogues, launches.toString());
    }

    @Test
    void tileLoopBytesOfAnotherProgramAreRejectedAndTheGraphCompiledAgain() {
        KernelCache cache = KernelCache.open(CacheConfig.memoryOnly(1 << 20));
        NpuGraphCompiler compiler = new NpuGraphCompiler(NpuDevice.current(), cache);
        Graph g = NpuBackendTest.w1Graph(1000);
        float[] expected = run(compiler.compile(g));
        Artifact good = cache.get(compiler.key(g)).orElseThrow();
        String part = good.partNames().stream().filter(n -> n.startsWith("tile-loops/")).findFirst().orElseThrow();
        TileProgram other = new TileProgram(List.of(new TileProgram.InputSpec(DType.FLOAT32, false)), 1, 1,
                List.of(new TileInstr.Load(0, 0), new TileInstr.Unary(UnaryFn.TANH, 0, 0), new TileInstr.Store(0, 0)));
        Map<String, byte[]> parts = new LinkedHashMap<>();
        for (String name : good.partNames()) parts.put(name, name.equals(part) ? TileLoopCompiler.generate(other) : good.part(name));
        cache.put(compiler.key(g), Artifact.of(parts, good.metadata()));

        long compiles = NpuGraphCompiler.counts().compiles();
        assertArrayEquals(expected, run(compiler.compile(g)));
        assertEquals(compiles + 1, NpuGraphCompiler.counts().compiles(), "the foreign class is refused, so the graph compiles again");
    }

    @Test
    void originTimesPrintAsMillisecondsToOneDecimal() {
        assertEquals("0.0", NpuGraphCompiler.millis(0));
        assertEquals("76.8", NpuGraphCompiler.millis(76_849_999));
        assertEquals("1.1", NpuGraphCompiler.millis(1_050_000));
        assertEquals("2.0", NpuGraphCompiler.millis(1_999_999));
        assertEquals("123456.8", NpuGraphCompiler.millis(123_456_789_000L));
    }
}
