package dev.kiln.trace;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.Dispatch;
import dev.kiln.tensor.Tensor;

import java.util.List;

/**
 * The eager backend: runs a graph node by node on the eager kernels. Values are
 * dropped as soon as their last user has run, so peak memory follows liveness.
 */
public final class GraphInterpreter implements GraphExecutable {
    private final Graph graph;
    private final int[] lastUse;

    public GraphInterpreter(Graph graph) {
        this.graph = graph;
        List<Node> nodes = graph.nodes();
        this.lastUse = new int[nodes.size()];
        for (Node n : nodes) {
            if (n instanceof Node.Apply ap) for (ValueRef v : ap.inputs()) lastUse[v.node()] = n.id();
        }
        for (ValueRef v : graph.outputs()) lastUse[v.node()] = Integer.MAX_VALUE;
    }

    @Override
    public Tensor[] run(Tensor[] inputs) {
        List<Node> nodes = graph.nodes();
        Tensor[][] values = new Tensor[nodes.size()][];
        for (Node n : nodes) {
            switch (n) {
                case Node.Input in -> values[n.id()] = new Tensor[] {inputs[in.index()]};
                case Node.Apply ap -> {
                    Tensor[] args = new Tensor[ap.inputs().size()];
                    for (int i = 0; i < args.length; i++) {
                        ValueRef v = ap.inputs().get(i);
                        args[i] = values[v.node()][v.output()];
                    }
                    values[n.id()] = Dispatch.apply(ap.op(), args);
                    for (ValueRef v : ap.inputs()) if (lastUse[v.node()] == n.id()) values[v.node()] = null;
                }
            }
        }
        Tensor[] out = new Tensor[graph.outputs().size()];
        for (int i = 0; i < out.length; i++) {
            ValueRef v = graph.outputs().get(i);
            out[i] = values[v.node()][v.output()];
        }
        return out;
    }
}
