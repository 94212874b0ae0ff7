package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;

import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The optimizer over random graphs ({@link RandomGraphs}): same results, never larger, idempotent. */
class PipelineProperties {
    /** The folded float32 transcendentals are correctly rounded, the kernels within a few ulp. */
    private static final double APPROXIMATE = 1e-6;

    @Property(tries = 200)
    void pipelineKeepsResultsNeverGrowsAndIsIdempotent(@ForAll long seed) {
        RandomGraphs.Generated g = RandomGraphs.generate(seed);
        Pipeline.Result result = Pipeline.standard().run(g.graph());
        Graph opt = result.graph();
        String context = "before:\n" + g.graph().toTable() + "after:\n" + opt.toTable() + result.explain();

        assertTrue(result.reachedFixedPoint(), context);
        assertTrue(opt.nodes().size() <= g.graph().nodes().size(), context);
        assertEquals(g.graph().inputMetas(), opt.inputMetas(), context);
        assertSameResults(g, opt, seed, context);

        Pipeline.Result again = Pipeline.standard().run(opt);
        assertEquals(opt, again.graph(), context);
        assertEquals(1, again.rounds(), context);
        assertTrue(again.reports().stream().noneMatch(Pipeline.PassReport::changed), again.explain());
    }

    @Property(tries = 100)
    void everyPassAloneKeepsResults(@ForAll long seed) {
        RandomGraphs.Generated g = RandomGraphs.generate(seed);
        for (GraphPass pass : Pipeline.standard().passes()) {
            PassResult r = pass.run(g.graph());
            String context = pass.name() + " before:\n" + g.graph().toTable() + "after:\n" + r.graph().toTable() + r.details();
            assertTrue(r.graph().nodes().size() <= g.graph().nodes().size(), context);
            assertEquals(r.details().isEmpty(), r.graph().equals(g.graph()), context);
            assertSameResults(g, r.graph(), seed, context);
        }
    }

    /** The generator is only worth its tries if every pass finds work in a fair share of its graphs. */
    @Example
    void randomGraphsGiveEveryPassWork() {
        Map<String, Integer> changed = new TreeMap<>();
        int graphs = 300;
        for (long seed = 0; seed < graphs; seed++) {
            for (Pipeline.PassReport r : Pipeline.standard().run(RandomGraphs.generate(seed).graph()).reports()) {
                if (r.round() == 1 && r.changed()) changed.merge(r.pass(), 1, Integer::sum);
            }
        }
        for (GraphPass pass : Pipeline.standard().passes()) {
            // The attention, normalisation and activation patterns are too specific for random graphs; FormAttentionTest,
            // FoldAttentionOutputPermuteTest, FormNormalizationTest and FormActivationTest give those passes their work.
            if (pass instanceof FormAttention || pass instanceof FoldAttentionOutputPermute || pass instanceof FormNormalization
                    || pass instanceof FormActivation) {
                continue;
            }
            int n = changed.getOrDefault(pass.name(), 0);
            assertTrue(n >= graphs / 10, pass.name() + " changed only " + n + " of " + graphs + " graphs: " + changed);
        }
    }

    private static void assertSameResults(RandomGraphs.Generated g, Graph optimized, long seed, String context) {
        for (int draw = 0; draw < 2; draw++) {
            Tensor[] in = GraphRuns.randomInputs(g.graph(), seed * 31 + draw);
            Tensor[] expected = GraphRuns.run(g.graph(), in), actual = GraphRuns.run(optimized, in);
            assertEquals(expected.length, actual.length);
            for (int i = 0; i < expected.length; i++) {
                GraphRuns.assertSameValues(expected[i], actual[i], g.approximate().get(i) ? APPROXIMATE : 0,
                        "output " + i + "\n" + context);
            }
        }
    }

}
