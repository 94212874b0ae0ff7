package dev.kiln.ir;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GraphFormatTest {

    static Graph sample() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(new TensorMeta(DType.FLOAT32, Shape.of(2, 3)));
        ValueRef w = b.input(new TensorMeta(DType.FLOAT32, Shape.of(3, 4)));
        ValueRef mm = b.apply(new Op.MatMul(), List.of(x, w)).get(0);
        ValueRef g = b.apply(new Op.Unary(UnaryFn.GELU), List.of(mm)).get(0);
        ValueRef s = b.apply(new Op.BinaryScalar(BinaryFn.MUL, 0.5, false, false), List.of(g)).get(0);
        ValueRef r = b.apply(new Op.Reduce(ReduceFn.SUM, List.of(1), true), List.of(s)).get(0);
        List<ValueRef> ln = b.apply(new Op.LayerNorm(1, 1e-5, false, false), List.of(s));
        ValueRef t = b.apply(new Op.Permute(List.of(1, 0)), List.of(ln.get(0))).get(0);
        ValueRef sl = b.apply(new Op.Slice(0, 3, -1, 2), List.of(t)).get(0);
        ValueRef c = b.apply(new Op.Cast(DType.FLOAT16), List.of(sl)).get(0);
        return b.build(List.of(r, c, ln.get(2)));
    }

    @Test
    void canonicalTextReadsBackToAnEqualGraph() {
        Graph g = sample();
        Graph back = GraphFormat.read(g.canonicalText());
        assertEquals(g, back);
        assertEquals(g.canonicalText(), back.canonicalText());
        assertEquals(g.hash(), back.hash());
    }

    @Test
    void canonicalTextIsVersionedAndExact() {
        String text = sample().canonicalText();
        assertTrue(text.startsWith("kiln-graph 2\n"), text);
        assertTrue(text.contains("%4 = BinaryScalar(fn=MUL, scalar=0.5, integralScalar=false, scalarFirst=false) (%3) : float32[2,4]"), text);
        assertTrue(text.contains("%6 = LayerNorm(axis=1, eps=1.0E-5, hasWeight=false, hasBias=false) (%4) : float32[2,4], float32[2,1], float32[2,1]"), text);
        assertTrue(text.endsWith("return (%5, %9, %6.2)\n"), text);
    }

    @Test
    void hashChangesWithAnyAttributeOrShape() {
        GraphBuilder a = new GraphBuilder();
        ValueRef x = a.input(new TensorMeta(DType.FLOAT32, Shape.of(4)));
        Graph g1 = a.build(a.apply(new Op.BinaryScalar(BinaryFn.ADD, 1.0, false, false), List.of(x)));
        GraphBuilder b = new GraphBuilder();
        ValueRef y = b.input(new TensorMeta(DType.FLOAT32, Shape.of(4)));
        Graph g2 = b.build(b.apply(new Op.BinaryScalar(BinaryFn.ADD, 2.0, false, false), List.of(y)));
        GraphBuilder c = new GraphBuilder();
        ValueRef z = c.input(new TensorMeta(DType.FLOAT32, Shape.of(5)));
        Graph g3 = c.build(c.apply(new Op.BinaryScalar(BinaryFn.ADD, 1.0, false, false), List.of(z)));
        assertNotEquals(g1.hash(), g2.hash());
        assertNotEquals(g1.hash(), g3.hash());
        assertEquals(64, g1.hash().length());
    }

    @Test
    void hashIsStableAcrossRuns() {
        // A fixed graph must hash the same in every JVM: the kernel cache keys on it.
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(new TensorMeta(DType.FLOAT32, Shape.of(2, 2)));
        Graph g = b.build(b.apply(new Op.Unary(UnaryFn.EXP), List.of(x)));
        assertEquals("kiln-graph 2\n%0 = input 0 : float32[2,2]\n%1 = Unary(fn=EXP) (%0) : float32[2,2]\nreturn (%1)\n",
                g.canonicalText());
        assertEquals(GraphFormat.read(g.canonicalText()).hash(), g.hash());
    }

    @Test
    void tableHasOneLinePerNodeWithShapes() {
        String table = sample().toTable();
        String[] lines = table.split("\n");
        assertEquals(1 + sample().nodes().size() + 1, lines.length);
        assertTrue(lines[3].startsWith("%2") && lines[3].contains("matmul") && lines[3].contains("%0, %1")
                && lines[3].endsWith("float32[2,4]"), lines[3]);
        assertTrue(table.contains("sum(dims=[1], keepdim=true)"), table);
    }

    @Test
    void dotExportHasNodesAndEdges() {
        String dot = sample().toDot();
        assertTrue(dot.startsWith("digraph kiln {"));
        assertTrue(dot.contains("n0 -> n2;"));
        assertTrue(dot.contains("n1 -> n2;"));
        assertTrue(dot.contains("out0"));
        assertTrue(dot.trim().endsWith("}"));
    }

    @Test
    void readingRejectsOtherVersions() {
        var e = assertThrows(IllegalArgumentException.class, () -> GraphFormat.read("kiln-graph 99\nreturn ()\n"));
        assertTrue(e.getMessage().contains("kiln-graph 2"), e.getMessage());
    }
}
