package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PipelineTest {

    /** x * (0.5 * 2) needs two rounds: the constant folds to 1 in the first, x * 1 goes in the second. */
    static Graph sample() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 3);
        ValueRef one = t.scalar(BinaryFn.MUL, t.full(0.5, DType.FLOAT32, 3), 2);
        ValueRef y = t.binary(BinaryFn.MUL, x, one);
        ValueRef s = t.binary(BinaryFn.ADD, t.unary(UnaryFn.TANH, y), t.unary(UnaryFn.TANH, y));
        t.unary(UnaryFn.EXP, x);
        ValueRef flat = t.op(new Op.Reshape(Shape.of(6)), s);
        return t.build(t.op(new Op.Reshape(Shape.of(3, 2)), flat));
    }

    @Test
    void standardPipelineRunsToAFixedPointAndExplainsEveryChange() {
        Graph g = sample();
        Pipeline.Result r = Pipeline.standard().run(g);
        assertEquals("""
                value   op                    args    type
                %0      input 0                       float32[2,3]
                %1      tanh                  %0      float32[2,3]
                %2      add                   %1, %1  float32[2,3]
                %3      reshape(shape=[3,2])  %2      float32[3,2]
                return                        %3
                """, r.graph().toTable());
        assertEquals("""
                round 1 algebraic-simplification: simplified 1 node (10 -> 10 nodes)
                    %9 = reshape(%8): reshape of reshape is one reshape
                round 1 constant-folding: folded 1 node (10 -> 10 nodes)
                    %2 = mul(%1) -> full(1.0)
                round 1 common-subexpression-elimination: merged 1 node (10 -> 9 nodes)
                    %5 (tanh) repeats %4
                round 1 dead-code-elimination: removed 3 nodes (9 -> 6 nodes)
                    %1 (full) is unused
                    %6 (exp) is unused
                    %7 (reshape) is unused
                round 2 algebraic-simplification: simplified 1 node (6 -> 5 nodes)
                    %2 = mul(%0, %1): x * 1 is x
                round 2 dead-code-elimination: removed 1 node (5 -> 4 nodes)
                    %1 (full) is unused
                fixed point after 3 rounds
                """, r.explain());
        assertTrue(r.reachedFixedPoint());
        assertEquals(3, r.rounds());
        assertEquals(3 * Pipeline.standard().passes().size() + 1, r.reports().size(), "every pass each round, then fresh-outputs");
        Pipeline.PassReport first = r.reports().get(0);
        assertEquals(new Pipeline.PassReport(1, "algebraic-simplification", 10, 10, "simplified 1 node",
                List.of("%9 = reshape(%8): reshape of reshape is one reshape")), first);

        Tensor[] in = GraphRuns.randomInputs(g, 3);
        GraphRuns.assertSameValues(GraphRuns.run(g, in)[0], GraphRuns.run(r.graph(), in)[0], 0, r.explain());
    }

    @Test
    void theRoundCapStopsBeforeAFixedPoint() {
        Pipeline once = new Pipeline(Pipeline.standard().passes(), 1);
        Pipeline.Result r = once.run(sample());
        assertFalse(r.reachedFixedPoint());
        assertEquals(1, r.rounds());
        assertEquals(6, r.graph().nodes().size());
        assertTrue(r.explain().endsWith("stopped at the cap of 1 rounds before reaching a fixed point\n"), r.explain());
        // Going on from there reaches the same graph as running to the fixed point at once.
        assertEquals(Pipeline.standard().run(sample()).graph(), Pipeline.standard().run(r.graph()).graph());
    }

    @Test
    void anyListOfPassesIsAPipeline() {
        Pipeline dceOnly = new Pipeline(List.of(new DeadCodeElimination()), 4);
        Pipeline.Result r = dceOnly.run(sample());
        assertEquals(List.of("dead-code-elimination", "dead-code-elimination", "fresh-outputs"),
                r.reports().stream().map(Pipeline.PassReport::pass).toList());
        assertEquals(9, r.graph().nodes().size()); // only the exp is dead
        assertEquals(2, r.rounds());
    }

    @Test
    void anOutputSimplifiedIntoAnInputIsCopiedButAViewOfOneIsReturnedAsTraced() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 2, 3);
        ValueRef twiceNegated = t.unary(UnaryFn.NEG, t.unary(UnaryFn.NEG, x));
        ValueRef transposed = t.op(new Op.Permute(List.of(1, 0)), x);
        Pipeline.Result r = Pipeline.standard().run(t.build(twiceNegated, transposed));
        Graph g = r.graph();
        // neg(neg(x)) is x, and the caller gets a copy of it, as eagerly; the transpose stays a view of x.
        Node.Apply copy = (Node.Apply) g.node(g.outputs().get(0).node());
        assertEquals(new Op.Contiguous(), copy.op());
        assertTrue(g.node(copy.inputs().getFirst().node()) instanceof Node.Input, g.toString());
        assertEquals(new Op.Permute(List.of(1, 0)), ((Node.Apply) g.node(g.outputs().get(1).node())).op());
        assertTrue(r.explain().contains("fresh-outputs: 1 output copied"), r.explain());
        assertTrue(r.explain().contains("output 0 (traced as %2) became %0, the memory of an input: copied into memory of its own"),
                r.explain());
    }

    @Test
    void aGraphWithNothingToDoTakesOneRound() {
        TestGraph t = new TestGraph();
        ValueRef x = t.input(DType.FLOAT32, 3);
        Graph g = t.build(t.unary(UnaryFn.EXP, x));
        Pipeline.Result r = Pipeline.standard().run(g);
        assertEquals(g, r.graph());
        assertEquals("fixed point after 1 round\n", r.explain());
    }

    @Test
    void rejectsEmptyPipelinesAndCapsBelowOne() {
        assertEquals("a pipeline needs at least one pass",
                assertThrows(IllegalArgumentException.class, () -> new Pipeline(List.of(), 3)).getMessage());
        assertEquals("maxRounds must be at least 1, got 0",
                assertThrows(IllegalArgumentException.class, () -> new Pipeline(List.of(new DeadCodeElimination()), 0)).getMessage());
    }
}
