package dev.kiln.tensor;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Creation, promotion and lifetime behaviour of the user-facing Tensor API, running on the NPU backend. */
class TensorApiTest {

    @Test
    void creationFunctions() {
        assertArrayEquals(new float[] {0, 0, 0, 0}, Tensor.zeros(2, 2).toFloatArray());
        assertArrayEquals(new float[] {1, 1, 1}, Tensor.ones(3).toFloatArray());
        assertArrayEquals(new double[] {2.5, 2.5}, Tensor.full(2.5, DType.FLOAT64, 2).toDoubleArray());
        assertArrayEquals(new long[] {0, 1, 2, 3}, Tensor.arange(4).toLongArray());
        assertEquals(DType.INT64, Tensor.arange(4).dtype());
        assertArrayEquals(new long[] {5, 3, 1}, Tensor.arange(5, 0, -2).toLongArray());
        assertArrayEquals(new float[] {0f, 0.5f, 1f, 1.5f}, Tensor.arange(0, 2, 0.5, DType.FLOAT32).toFloatArray());
        assertArrayEquals(new float[] {1, 0, 0, 0, 1, 0}, Tensor.eye(2, 3, DType.FLOAT32).toFloatArray());
        assertEquals(Shape.SCALAR, Tensor.scalar(3f).shape());
        assertEquals(3.0, Tensor.scalar(3f).item());
        assertArrayEquals(new boolean[] {true, false}, Tensor.of(new boolean[] {true, false}, 2).toBooleanArray());
        assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6}, Tensor.of(new int[] {1, 2, 3, 4, 5, 6}, 2, 3).toIntArray());
    }

    @Test
    void seededRandomIsReproducibleAndShaped() {
        Tensor a = Tensor.randn(42, 64, 32), b = Tensor.randn(42, 64, 32), c = Tensor.randn(43, 64, 32);
        assertArrayEquals(a.toFloatArray(), b.toFloatArray());
        assertNotEquals(a.toFloatArray()[0], c.toFloatArray()[0]);
        double mean = a.mean().item(), var = a.mul(a).mean().item() - mean * mean;
        assertEquals(0, mean, 0.05);
        assertEquals(1, var, 0.1);
        float[] u = Tensor.rand(7, 10_000).toFloatArray();
        for (float v : u) assertTrue(v >= 0 && v < 1);
    }

    @Test
    void normalIsScaledAndShiftedRandnInOnePass() {
        float[] z = Tensor.randn(5, 3, 1000).toFloatArray();
        float[] n = Tensor.normal(5, 0.25, 0.5, 3, 1000).toFloatArray();
        for (int i = 0; i < z.length; i++) assertEquals(Math.fma(z[i], 0.5f, 0.25f), n[i], "element " + i);
        // With mean 0 it is randn times std, elementwise in float32, as randn(...).mul(std) gives.
        double std = 1 / Math.sqrt(512);
        assertArrayEquals(Tensor.randn(9, 64, 48).mul(std).toFloatArray(), Tensor.normal(9, 0, std, 64, 48).toFloatArray());
        double mean = Tensor.normal(11, 3, 2, 20_000).mean().item();
        assertEquals(3, mean, 0.05);
        assertThrows(IllegalArgumentException.class, () -> Tensor.normal(1, 0, -1, 4));
        assertThrows(IllegalArgumentException.class, () -> Tensor.normal(1, Double.NaN, 1, 4));
    }

    @Test
    void typePromotionFollowsPyTorch() {
        Tensor i32 = Tensor.of(new int[] {1, 2}, 2), i64 = Tensor.of(new long[] {1, 2}, 2);
        Tensor f32 = Tensor.of(new float[] {1, 2}, 2), f64 = Tensor.of(new double[] {1, 2}, 2);
        Tensor f16 = f32.to(DType.FLOAT16), bool = Tensor.of(new boolean[] {true, false}, 2);
        assertEquals(DType.INT64, i32.add(i64).dtype());
        assertEquals(DType.FLOAT32, i64.add(f32).dtype());
        assertEquals(DType.FLOAT64, f32.add(f64).dtype());
        assertEquals(DType.FLOAT32, f16.add(f32).dtype());
        assertEquals(DType.FLOAT16, f16.mul(2.5).dtype(), "a Python-style scalar never widens a float tensor");
        assertEquals(DType.FLOAT32, i32.mul(2.5).dtype(), "a float scalar makes an integer tensor float32");
        assertEquals(DType.INT32, i32.mul(2).dtype(), "an integer scalar keeps an int32 tensor int32");
        assertEquals(DType.FLOAT32, i32.div(i32).dtype(), "true division of integers gives float32");
        assertEquals(DType.BOOL, f32.lt(i64).dtype());
        assertEquals(DType.INT32, bool.add(i32).dtype());
        assertEquals(DType.FLOAT32, i32.exp().dtype());
        assertEquals(DType.INT64, i32.sum().dtype());
    }

    @Test
    void errorsNameTheOpShapesAndDimension() {
        Tensor a = Tensor.zeros(2, 3), b = Tensor.zeros(4);
        assertEquals("add: shapes [2,3] and [4] do not broadcast: dimension -1 is 3 vs 4",
                assertThrows(KilnShapeException.class, () -> a.add(b)).getMessage());
        assertEquals("matmul: shapes [2,3] and [4] cannot multiply: dimension 1 of the left (3) must equal dimension 0 of the right (4)",
                assertThrows(KilnShapeException.class, () -> a.matmul(b)).getMessage());
        assertEquals("softmax: dimension 2 is out of range for shape [2,3] (expected in [-2, 1])",
                assertThrows(KilnShapeException.class, () -> a.softmax(2)).getMessage());
        assertEquals("sub: not supported for bool tensors; use logical_xor instead",
                assertThrows(KilnTypeException.class, () -> a.gt(0.0).sub(a.gt(0.0))).getMessage());
        assertTrue(assertThrows(KilnTypeException.class, () -> Tensor.arange(3).mean()).getMessage().startsWith("mean: could not infer output dtype"));
        assertEquals("item: only one-element tensors can be converted to a scalar, got shape [2,3]",
                assertThrows(KilnShapeException.class, a::item).getMessage());
        assertEquals("of: 5 values cannot fill shape [2,3] (6 elements)",
                assertThrows(KilnShapeException.class, () -> Tensor.of(new float[5], 2, 3)).getMessage());
    }

    @Test
    void toStringShowsValuesDtypeAndShape() {
        assertEquals("tensor([[1.0, 2.0], [3.0, 4.0]], dtype=float32, shape=[2,2])",
                Tensor.of(new float[] {1, 2, 3, 4}, 2, 2).toString());
        assertEquals("tensor([true, false], dtype=bool, shape=[2])", Tensor.of(new boolean[] {true, false}, 2).toString());
    }

    /**
     * A long loop of eager ops must not grow memory without bound: storage is freed once
     * unreachable, and allocation pressure triggers collection. Runs in a child JVM with a
     * small direct-memory cap, allocating 40x that cap in total.
     */
    @Test
    void longEagerLoopRunsInBoundedMemory() throws IOException, InterruptedException {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path log = Files.createTempFile("kiln-loop", ".log");
        Process p = new ProcessBuilder(List.of(javaBin, "--add-modules", "jdk.incubator.vector", "-Xmx128m",
                "-XX:MaxDirectMemorySize=128m", "-cp", System.getProperty("java.class.path"),
                EagerLoop.class.getName(), "5120"))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the loop did not finish in time");
        String out = Files.readString(log);
        Files.deleteIfExists(log);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("done"), out);
    }

    /** The child process of {@link #longEagerLoopRunsInBoundedMemory}: 1M-float ops, {@code args[0]} MiB in total. */
    public static final class EagerLoop {
        public static void main(String[] args) {
            long totalMiB = Long.parseLong(args[0]);
            Tensor x = Tensor.ones(1 << 20);
            Tensor acc = Tensor.zeros(1 << 20);
            for (long mib = 0; mib < totalMiB; mib += 8) {
                acc = acc.add(x).mul(0.5);
            }
            System.out.println("done " + acc.sum().item());
        }
    }
}
