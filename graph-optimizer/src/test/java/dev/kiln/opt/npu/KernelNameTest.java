package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class KernelNameTest {

    @Test
    void aFusedKernelIsNamedAfterItsDistinctOpsInOrderAndItsFirstNode() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(new TensorMeta(DType.FLOAT32, Shape.of(64)));
        ValueRef y = x;
        for (UnaryFn fn : List.of(UnaryFn.EXP, UnaryFn.TANH, UnaryFn.EXP, UnaryFn.SIGMOID)) y = b.apply(new Op.Unary(fn), List.of(y)).get(0);
        y = b.apply(new Op.Binary(BinaryFn.ADD), List.of(y, x)).get(0);
        Graph g = b.build(List.of(y));
        KernelProgram p = Lowering.lower(g, NpuDevice.current());
        assertEquals("fused_exp_tanh_sigmoid_add_1", ((KernelProgram.Fused) p.launches().getFirst()).name());
    }

    @Test
    void longChainsNameTheirFirstSixOpsThenEtc() {
        GraphBuilder b = new GraphBuilder();
        ValueRef y = b.input(new TensorMeta(DType.FLOAT32, Shape.of(8)));
        for (UnaryFn fn : List.of(UnaryFn.EXP, UnaryFn.TANH, UnaryFn.SIGMOID, UnaryFn.NEG, UnaryFn.ABS, UnaryFn.SQRT, UnaryFn.RELU)) {
            y = b.apply(new Op.Unary(fn), List.of(y)).get(0);
        }
        Graph g = b.build(List.of(y));
        assertEquals("fused_exp_tanh_sigmoid_neg_abs_sqrt_etc_1", Lowering.kernelName("fused", g, List.of(1, 2, 3, 4, 5, 6, 7), 1));
    }
}
