package dev.kiln.samples.conformance;

import dev.kiln.tensor.Elements;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Tensor;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collections;
import java.util.List;

/**
 * An ONNX node ready to run: op type, attributes and input tensors (null where an optional
 * input is left out). It records which inputs a mapping reads on the host (axes, shapes,
 * bounds), since compiled mode passes those as guarded values rather than graph inputs.
 */
public record OnnxNode(String op, Attributes attributes, List<Tensor> inputs, BitSet hostReads) {

    public OnnxNode {
        inputs = Collections.unmodifiableList(new ArrayList<>(inputs));
    }

    public OnnxNode(String op, Attributes attributes, List<Tensor> inputs) {
        this(op, attributes, inputs, new BitSet());
    }

    /** A required input. */
    public Tensor input(int index) {
        Tensor t = optional(index);
        if (t == null) throw new IllegalArgumentException(op + ": input " + index + " is required but missing");
        return t;
    }

    /** An optional input: null when left out or beyond the inputs given. */
    public Tensor optional(int index) {
        return index < inputs.size() ? inputs.get(index) : null;
    }

    /** The values of an integer tensor input (axes, shapes, starts...), read without running kernels. */
    public long[] integers(int index) {
        hostReads.set(index);
        Tensor t = input(index);
        if (!t.dtype().isInteger()) {
            throw new KilnTypeException(op + ": input " + index + " must be an integer tensor, got " + t.dtype() + t.shape());
        }
        long[] out = new long[Math.toIntExact(t.numel())];
        for (int i = 0; i < out.length; i++) out[i] = Elements.readLong(t.dtype(), t.storage().segment(), t.elementOffset(i));
        return out;
    }

    /** The value of a one-element integer tensor input (an axis, a diagonal offset). */
    public long integer(int index) {
        long[] v = integers(index);
        if (v.length != 1) {
            throw new KilnShapeException(op + ": input " + index + " must hold one value, got shape " + input(index).shape());
        }
        return v[0];
    }

    /** The value of a one-element tensor input as a double (clip bounds). */
    public double scalar(int index) {
        hostReads.set(index);
        Tensor t = input(index);
        if (t.numel() != 1) throw new KilnShapeException(op + ": input " + index + " must hold one value, got shape " + t.shape());
        return Elements.read(t.dtype(), t.storage().segment(), t.elementOffset(0));
    }
}
