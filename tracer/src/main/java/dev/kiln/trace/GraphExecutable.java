package dev.kiln.trace;

import dev.kiln.tensor.Tensor;

/** A graph made runnable by a backend: concrete inputs in graph-input order, outputs in graph-output order. */
public interface GraphExecutable {
    Tensor[] run(Tensor[] inputs);
}
