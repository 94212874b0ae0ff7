package dev.kiln.opt.npu;

import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.fused.FusedKernel;
import dev.kiln.npu.kernels.MatMul;
import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.GraphExecutable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Runs a {@link KernelProgram}: fused launches on the virtual NPU, the rest on the eager
 * kernels. Slot values are dropped after their last reader, so peak memory follows
 * liveness as in the interpreter.
 */
public final class NpuExecutable implements GraphExecutable {
    private final KernelProgram program;
    private final FusedKernel[] kernels;
    private final int[] lastUse;
    private volatile List<LaunchTraffic> lastTraffic = List.of();
    private volatile long[] lastNanos;
    private final String origin;
    private final String passes;

    public NpuExecutable(KernelProgram program, NpuDevice device) { this(program, device, "compiled", ""); }

    /**
     * {@code origin} says how the program was obtained (compiled, or a memory or disk hit of
     * the kernel cache) and {@code passes} what the optimisation passes changed.
     */
    public NpuExecutable(KernelProgram program, NpuDevice device, String origin, String passes) {
        this.program = program;
        this.origin = origin;
        this.passes = passes;
        List<KernelProgram.Launch> launches = program.launches();
        this.kernels = new FusedKernel[launches.size()];
        this.lastUse = new int[program.slots()];
        for (int i = 0; i < launches.size(); i++) {
            if (launches.get(i) instanceof KernelProgram.Fused f) kernels[i] = new FusedKernel(f.name(), f.program(), device);
            for (int s : launches.get(i).in()) lastUse[s] = i;
        }
        for (int s : program.outputs()) lastUse[s] = Integer.MAX_VALUE;
    }

    public KernelProgram program() { return program; }

    /** The DRAM traffic of each fused launch of the most recent run, in launch order. */
    public List<LaunchTraffic> lastRunTraffic() { return lastTraffic; }

    @Override
    public Tensor[] run(Tensor[] inputs) {
        Tensor[] slots = new Tensor[program.slots()];
        for (int i = 0; i < inputs.length; i++) slots[program.inputs().get(i)] = inputs[i];
        List<LaunchTraffic> traffic = new ArrayList<>();
        List<KernelProgram.Launch> launches = program.launches();
        long[] nanos = new long[launches.size()];
        for (int i = 0; i < launches.size(); i++) {
            long t0 = System.nanoTime();
            KernelProgram.Launch l = launches.get(i);
            Tensor[] args = new Tensor[l.in().size()];
            for (int k = 0; k < args.length; k++) args[k] = slots[l.in().get(k)];
            Tensor[] results = switch (l) {
                case KernelProgram.Eager e -> Dispatch.apply(e.op(), args);
                case KernelProgram.Fused f -> {
                    // Views (a transpose, a slice) reach a fused kernel as DMA-able contiguous copies.
                    for (int k = 0; k < args.length; k++) {
                        if (args[k].numel() != 1 && !args[k].isContiguous()) args[k] = Dispatch.apply1(new Op.Contiguous(), args[k]);
                    }
                    Tensor[] out = new Tensor[f.out().size()];
                    for (int k = 0; k < out.length; k++) out[k] = Tensor.empty(DType.FLOAT32, f.shape());
                    traffic.add(kernels[i].launch(args, out));
                    yield out;
                }
                case KernelProgram.MatMulFused m -> {
                    Tensor out = Tensor.empty(DType.FLOAT32, m.shape());
                    MatMul.matmul(args[0], args[1], out, m.epilogue(), Arrays.copyOfRange(args, 2, args.length));
                    yield new Tensor[] {out};
                }
            };
            for (int k = 0; k < results.length; k++) slots[l.out().get(k)] = results[k];
            for (int s : l.in()) if (lastUse[s] == i) slots[s] = null;
            nanos[i] = System.nanoTime() - t0;
        }
        lastTraffic = List.copyOf(traffic);
        lastNanos = nanos;
        Tensor[] out = new Tensor[program.outputs().size()];
        for (int i = 0; i < out.length; i++) out[i] = slots[program.outputs().get(i)];
        return out;
    }

    /** The origin, then one line per launch: fused kernels with their instructions' count, time and DRAM bytes of the last run. */
    @Override
    public String describe() {
        StringBuilder sb = new StringBuilder("npu program: ").append(program.launches().size()).append(" launches, ")
                .append(program.fusedLaunches()).append(" fused (").append(origin).append(")\n");
        if (!passes.isEmpty()) for (String line : passes.split("\n")) sb.append("  passes: ").append(line).append('\n');
        long[] nanos = lastNanos;
        List<LaunchTraffic> traffic = lastTraffic;
        int fused = 0;
        for (int i = 0; i < program.launches().size(); i++) {
            KernelProgram.Launch l = program.launches().get(i);
            String what = switch (l) {
                case KernelProgram.Eager e -> "eager " + e.op().name();
                case KernelProgram.Fused f -> "fused " + f.name() + " (" + f.program().instructions().size() + " tile instructions)";
                case KernelProgram.MatMulFused m -> "matmul " + m.name() + " with an epilogue ("
                        + m.epilogue().program().instructions().size() + " tile instructions)";
            };
            sb.append(String.format(java.util.Locale.ROOT, "  launch %d: %s", i, what));
            if (nanos != null) sb.append(String.format(java.util.Locale.ROOT, ", %.3f ms", nanos[i] / 1e6));
            if (l instanceof KernelProgram.Fused && fused < traffic.size()) {
                LaunchTraffic t = traffic.get(fused++);
                sb.append(", DRAM read ").append(t.bytesRead()).append(" B, written ").append(t.bytesWritten()).append(" B");
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    @Override
    public String toString() { return "NpuExecutable" + Arrays.toString(kernels); }
}
