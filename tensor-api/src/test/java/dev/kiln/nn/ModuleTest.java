package dev.kiln.nn;

import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

class ModuleTest {
    record Pair(Tensor first, Tensor second) {}

    record Nested(Pair pair, Tensor[] extra) {}

    static class Leaf extends Module {
        final Tensor weight;
        final Tensor bias;

        Leaf(Tensor weight, Tensor bias) {
            this.weight = weight;
            this.bias = bias;
        }
    }

    static class Base extends Module {
        final Tensor zeta = Tensor.randn(1, 2);
    }

    static class Model extends Base {
        final Leaf head;
        final Leaf[] blocks;
        final List<Leaf> more;
        final Nested weights;
        final Tensor alpha;
        final String name = "not a parameter";
        static final Tensor IGNORED = Tensor.randn(9, 1);

        Model(Tensor shared) {
            head = new Leaf(Tensor.randn(2, 2), Tensor.randn(3, 2));
            blocks = new Leaf[] {new Leaf(Tensor.randn(4, 2), shared), new Leaf(Tensor.randn(5, 2), Tensor.randn(6, 2))};
            more = List.of(new Leaf(Tensor.randn(7, 2), Tensor.randn(8, 2)));
            weights = new Nested(new Pair(Tensor.randn(10, 2), shared), new Tensor[] {Tensor.randn(11, 2)});
            alpha = shared;
        }
    }

    @Test
    void parametersAreFoundThroughFieldsSubModulesArraysListsAndRecordsInAStableOrder() {
        Model m = new Model(Tensor.randn(12, 2));
        Map<String, Tensor> params = m.namedParameters();
        // Fields by name, superclass first; record components in declaration order; the shared tensor only as "alpha".
        assertEquals(List.of("zeta", "alpha", "blocks.0.weight", "blocks.1.bias", "blocks.1.weight", "head.bias", "head.weight",
                "more.0.bias", "more.0.weight", "weights.pair.first", "weights.extra.0"), List.copyOf(params.keySet()));
        assertSame(m.alpha, params.get("alpha"));
        assertSame(m.weights.pair().first(), params.get("weights.pair.first"));
    }

    @Test
    void aTiedTensorIsListedOnceUnderItsFirstPath() {
        Tensor shared = Tensor.randn(13, 2);
        Map<String, Tensor> params = new Model(shared).namedParameters();
        assertEquals(List.of("alpha"), params.entrySet().stream().filter(e -> e.getValue() == shared).map(Map.Entry::getKey).toList());
    }

    @Test
    void repeatedCollectionsSeeTheCurrentRecordValues() {
        Model a = new Model(Tensor.randn(14, 2)), b = new Model(Tensor.randn(15, 2));
        assertSame(a.weights.pair().first(), a.namedParameters().get("weights.pair.first"));
        assertSame(b.weights.pair().first(), b.namedParameters().get("weights.pair.first"));
        assertSame(a.weights.extra()[0], a.namedParameters().get("weights.extra.0"));
    }

    @Test
    void structureListsTheSubModuleClassesInWalkOrder() {
        assertEquals(List.of(Model.class, Leaf.class, Leaf.class, Leaf.class, Leaf.class), new Model(Tensor.randn(16, 2)).structure());
    }
}
