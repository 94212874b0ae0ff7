package dev.kiln.trace;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Fn2;
import dev.kiln.Kiln;
import dev.kiln.nn.F;
import dev.kiln.nn.Module;
import dev.kiln.ops.Warmup;
import dev.kiln.tensor.Tensor;

/**
 * Warms the tracer up: Byte Buddy (whose first proxy class costs a fresh JVM hundreds of
 * milliseconds of class loading), module proxies, tracing, guards and replay. It compiles
 * on the eager backend, so no kernel cache or compile counter sees it.
 */
public final class TracerWarmup implements Warmup {
    private static final CompileOptions EAGER = CompileOptions.defaults().backend(Backend.EAGER);

    /** A module of its own, so no application class gets a proxy it did not ask for. */
    public static class Block extends Module {
        final Tensor weight = Tensor.randn(1, 16, 16);

        public Tensor forward(Tensor x) {
            return F.rmsNorm(x, new int[] {16}, null, 1e-6).matmul(weight.mT()).silu().add(x);
        }
    }

    @Override
    public int order() { return 10; }

    @Override
    public int rounds() { return 3; }

    @Override
    public void round() {
        Tensor x = Tensor.randn(2, 4, 16);
        Block compiled = Kiln.compile(new Block(), EAGER);
        compiled.forward(x);
        compiled.forward(x);
        Fn2<Tensor> fn = Kiln.compile((a, b) -> a.mul(b).softmax(-1), EAGER);
        fn.apply(x, x);
        fn.apply(x, x);
    }
}
