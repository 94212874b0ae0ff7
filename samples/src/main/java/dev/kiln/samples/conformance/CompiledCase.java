package dev.kiln.samples.conformance;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Explanation;
import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;

/**
 * Runs a case through {@code Kiln.compile} on the NPU backend (optimised, fused where it
 * can be, lowered to a kernel program): the tensor inputs are graph inputs; inputs the
 * mapping reads on the host (axes, shapes, clip bounds) are constants of the graph,
 * guarded by value. The graph must compile whole ({@code fullGraph}): a graph break or an
 * eager fallback is a failure with its reason, never a silent pass. The result checked is
 * that of the second call, a replay of the compiled graph.
 */
final class CompiledCase {
    private CompiledCase() {}

    static List<Tensor> run(ConformanceCase c, List<Tensor> inputs) throws UnsupportedCaseException {
        if (OnnxOps.isEagerOnly(c.op())) throw new UnsupportedCaseException("updates its inputs in place: compiled code runs it at a graph break, which fullGraph refuses");
        // An eager run first tells which inputs the mapping reads on the host.
        OnnxNode probe = new OnnxNode(c.op(), c.attributes(), inputs);
        OnnxOps.run(probe);
        BitSet host = probe.hostReads();

        List<Integer> graphInputs = new ArrayList<>();
        StringBuilder hostValues = new StringBuilder();
        for (int i = 0; i < inputs.size(); i++) {
            Tensor t = inputs.get(i);
            if (t == null) continue;
            if (host.get(i)) hostValues.append(i).append('=').append(Arrays.toString(t.toDoubleArray())).append(';');
            else graphInputs.add(i);
        }
        FnN<Tensor[]> compiled = Kiln.compileN(args -> {
            List<Tensor> in = new ArrayList<>(inputs);
            for (int k = 0; k < graphInputs.size(); k++) in.set(graphInputs.get(k), (Tensor) args[k]);
            try {
                return OnnxOps.run(new OnnxNode(c.op(), c.attributes(), in)).toArray(Tensor[]::new);
            } catch (UnsupportedCaseException e) {
                throw new IllegalStateException("the mapping became unsupported while tracing", e);
            }
        }, CompileOptions.defaults().backend(Backend.NPU).fullGraph(true));

        Object[] args = new Object[graphInputs.size() + 1];
        for (int k = 0; k < graphInputs.size(); k++) args[k] = inputs.get(graphInputs.get(k));
        args[graphInputs.size()] = hostValues.toString();
        compiled.apply(args);
        Tensor[] replayed = compiled.apply(args);

        Explanation e = Kiln.explain(compiled, args);
        if (e.isLazy() || !e.graphBreaks().isEmpty()) {
            throw new KilnException("compiled run fell back to lazy mode: " + e.graphBreaks());
        }
        if (e.compiles().size() != 1) {
            throw new KilnException("compiled run traced " + e.compiles().size() + " times for one signature");
        }
        return Arrays.asList(replayed);
    }
}
