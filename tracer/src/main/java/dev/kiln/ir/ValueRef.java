package dev.kiln.ir;

/** An SSA value: output {@code output} of node {@code node}. */
public record ValueRef(int node, int output) {
    @Override
    public String toString() { return output == 0 ? "%" + node : "%" + node + "." + output; }
}
