package dev.kiln.trace;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Dynamic;
import dev.kiln.Fn1;
import dev.kiln.Kiln;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class ConcurrentCompileTest {

    @Test
    void eachSignatureCompilesOnceAndResultsNeverMix() throws Exception {
        AtomicInteger traces = new AtomicInteger();
        // Static shapes, so that every trace is a compile (dynamic shapes would add probe traces).
        Fn1<Tensor> f = Kiln.compile(x -> {
            traces.incrementAndGet();
            return x.mul(3.0).add(x.sum(-1, true));
        }, CompileOptions.defaults().backend(Backend.EAGER).dynamic(Dynamic.OFF));
        int threads = 8, callsPerThread = 40, sizes = 4;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        CountDownLatch start = new CountDownLatch(1);
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int thread = t;
            futures.add(pool.submit(() -> {
                start.await();
                for (int i = 0; i < callsPerThread; i++) {
                    int n = 1 + (thread + i) % sizes;
                    float v = thread * 1000 + i;
                    Tensor x = Tensor.full(v, 2, n);
                    float[] expected = new float[2 * n];
                    java.util.Arrays.fill(expected, 3 * v + n * v);
                    assertArrayEquals(expected, f.apply(x).toFloatArray(), 1e-3f);
                }
                return null;
            }));
        }
        start.countDown();
        for (Future<?> fu : futures) fu.get();
        pool.shutdown();
        assertEquals(sizes, traces.get(), "one trace per signature, however many callers race");
    }
}
