package dev.kiln.trace;

import dev.kiln.tensor.Tensor;

/** A graph made runnable by a backend: concrete inputs in graph-input order, outputs in graph-output order. */
public interface GraphExecutable {
    Tensor[] run(Tensor[] inputs);

    /** What the backend made of the graph and what its most recent run cost (for explain); empty if nothing to add. */
    default String describe() { return ""; }
}
