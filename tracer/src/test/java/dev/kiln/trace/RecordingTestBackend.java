package dev.kiln.trace;

import dev.kiln.Backend;
import dev.kiln.ir.Graph;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The NPU backend as the tracer's tests see it: graphs run on the interpreter, and the
 * test decides whether it offers one executable for a whole symbolic signature.
 */
public final class RecordingTestBackend implements GraphCompiler {
    static final AtomicInteger COMPILES = new AtomicInteger(), FAMILIES = new AtomicInteger(), PREPARES = new AtomicInteger();
    static volatile boolean offersFamilies;

    @Override
    public Backend backend() { return Backend.NPU; }

    @Override
    public void prepare() { PREPARES.incrementAndGet(); }

    @Override
    public GraphExecutable compile(Graph g) {
        COMPILES.incrementAndGet();
        return new GraphInterpreter(g);
    }

    /**
     * The first sample's graph, run at any size: right for the elementwise functions the
     * tests compile, whose graphs hold no size.
     */
    @Override
    public Optional<GraphExecutable> compileFamily(List<Graph> graphs, long[] base) {
        if (!offersFamilies) return Optional.empty();
        FAMILIES.incrementAndGet();
        GraphInterpreter anySize = new GraphInterpreter(graphs.getFirst());
        return Optional.of(new GraphExecutable() {
            @Override
            public dev.kiln.tensor.Tensor[] run(dev.kiln.tensor.Tensor[] inputs) { return anySize.run(inputs); }

            @Override
            public String describe() { return "one test program for every size"; }
        });
    }
}
