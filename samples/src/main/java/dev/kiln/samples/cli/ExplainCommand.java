package dev.kiln.samples.cli;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Explanation;
import dev.kiln.Kiln;
import dev.kiln.ir.Graph;
import dev.kiln.samples.DecoderBlock;
import dev.kiln.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "explain", mixinStandardHelpOptions = true,
        description = {
                "Compiles the W4 decoder block as a module on the NPU backend and prints what the compiler did: each"
                        + " compiled signature and the guard that caused it, symbolic dimensions, the graphs (one line per node"
                        + " with shapes), the passes, fused kernels and per-launch time and DRAM bytes, whether programs came"
                        + " from the kernel cache, graph breaks with their source lines, and the cost of a call.",
                "The block is called at two sequence lengths, so the second call shows the sequence dimension"
                        + " becoming symbolic."})
final class ExplainCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--seq", paramLabel = "N", defaultValue = "64", description = "First sequence length (default: ${DEFAULT-VALUE}).")
    int seq;

    @Option(names = "--dot", paramLabel = "FILE", description = "Also write the last graph as Graphviz DOT to FILE.")
    Path dot;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        DecoderBlock.Config cfg = DecoderBlock.Config.w4();
        DecoderBlock block = Kiln.compile(new DecoderBlock(cfg, DemoPhase.SEED), CompileOptions.defaults().backend(Backend.NPU));
        block.forward(input(cfg, seq), Tensor.arange(seq));
        int second = seq + 16;
        Explanation e = Kiln.explain(block, input(cfg, second), Tensor.arange(second));
        out.print(e);
        if (dot != null) {
            List<Graph> graphs = e.graphs();
            Files.writeString(dot, graphs.getLast().toDot());
            out.println("wrote " + dot);
        }
        out.flush();
        return 0;
    }

    private static Tensor input(DecoderBlock.Config cfg, int seq) {
        return Tensor.randn(7, 1, seq, cfg.dModel());
    }
}
