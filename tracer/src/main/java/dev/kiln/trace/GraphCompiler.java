package dev.kiln.trace;

import dev.kiln.Backend;
import dev.kiln.ir.Graph;

/**
 * A backend that turns a traced graph into something runnable. Implementations live in
 * other modules and are found with {@link java.util.ServiceLoader}, so the tracer does
 * not depend on them: register one in {@code META-INF/services/dev.kiln.trace.GraphCompiler}.
 */
public interface GraphCompiler {
    /** The backend this compiler implements. */
    Backend backend();

    GraphExecutable compile(Graph g);
}
