package dev.kiln.ir;

import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The written-out op codec against the records themselves: for every op record, random
 * attribute values encode to {@code Name(component=value, ...)} in component order (derived
 * here by reflection, so a renamed or added component fails) and decode to an equal op.
 */
class OpCodecProperties {

    private static final List<Class<?>> OP_RECORDS = records(Op.class, new ArrayList<>());

    @Property(tries = 3000)
    void everyOpRoundTripsInItsRecordsForm(@ForAll("ops") Op op) {
        String text = OpCodec.encode(op);
        assertEquals(reflectiveForm(op), text);
        assertEquals(op, OpCodec.decode(text));
    }

    @Example
    void everyOpRecordHasAnEncoding() {
        // The property picks op classes at random; this takes each one, so none is left untried.
        for (Class<?> c : OP_RECORDS) {
            Op op = opsOf(c).sample();
            assertEquals(reflectiveForm(op), OpCodec.encode(op));
            assertEquals(op, OpCodec.decode(OpCodec.encode(op)));
        }
        assertTrue(OP_RECORDS.size() >= 31, "found only " + OP_RECORDS.size() + " op records");
    }

    @Example
    void attentionsTextIsPinned() {
        Op op = new Op.Attention(true, -3, 0.125, 30.0, true, true, 256, true);
        assertEquals("Attention(causal=true, causalOffset=-3, scale=0.125, softcap=30.0, enableGqa=true, hasMask=true,"
                + " partitionSize=256, transposedOutput=true)", OpCodec.encode(op));
        assertEquals("Permute(dims=[0,2,1,3])", OpCodec.encode(new Op.Permute(List.of(0, 2, 1, 3))));
        assertEquals("MatMul()", OpCodec.encode(new Op.MatMul()));
    }

    @Example
    void malformedTextIsRejectedWithTheOpAndAttribute() {
        Map<String, String> cases = Map.of(
                "Softmax(dim=1)", "Softmax: missing attribute log",
                "Softmax(dim=1, log=false, extra=2)", "Softmax: unknown attributes [extra]",
                "Softmax(dim=1, dim=2, log=false)", "Softmax: attribute dim given twice",
                "Softmax(dim=1, log=yes)", "Softmax: log is not a boolean: yes",
                "Softmax(dim=1, log)", "Softmax: not an attribute: log",
                "Frobnicate(x=1)", "unknown op Frobnicate",
                "Softmax", "not an op: Softmax",
                "Permute(dims=0)", "not a list of integers: 0");
        cases.forEach((text, message) -> {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OpCodec.decode(text), text);
            assertEquals(message, e.getMessage(), text);
        });
    }

    @Provide
    Arbitrary<Op> ops() {
        return Arbitraries.oneOf(OP_RECORDS.stream().map(OpCodecProperties::opsOf).toList());
    }

    /** Instances of record {@code c} from random components; combinations its constructor rejects are skipped. */
    private static Arbitrary<Op> opsOf(Class<?> c) {
        RecordComponent[] rc = c.getRecordComponents();
        if (rc.length == 0) return Arbitraries.just(construct(c, List.of()));
        List<Arbitrary<Object>> parts = new ArrayList<>();
        for (RecordComponent r : rc) parts.add(valuesOf(r));
        return Combinators.combine(parts).as(args -> construct(c, args)).filter(op -> op != null);
    }

    @SuppressWarnings("unchecked")
    private static Arbitrary<Object> valuesOf(RecordComponent r) {
        Class<?> t = r.getType();
        Arbitrary<?> a;
        if (t == boolean.class) a = Arbitraries.of(true, false);
        else if (t == int.class) a = Arbitraries.integers().between(-5, 300);
        else if (t == long.class) a = Arbitraries.oneOf(Arbitraries.longs().between(-5, 5), Arbitraries.longs());
        else if (t == double.class) {
            a = Arbitraries.oneOf(Arbitraries.of(0.0, -0.0, 1.0, -2.0, 0.125, 1e-5, 1e300, Double.NaN, Double.POSITIVE_INFINITY,
                    Double.MIN_VALUE, -0.28782313662425574), Arbitraries.doubles());
        } else if (t == DType.class) a = Arbitraries.of(DType.values());
        else if (t.isEnum()) a = Arbitraries.of((Class<Enum>) t);
        else if (t == Shape.class) a = Arbitraries.integers().between(0, 9).array(int[].class).ofMaxSize(4).map(Shape::of);
        else if (t == List.class && ((ParameterizedType) r.getGenericType()).getActualTypeArguments()[0] == Integer.class) {
            a = Arbitraries.integers().between(0, 5).list().ofMaxSize(5);
        } else throw new AssertionError("no generator for " + r);
        return (Arbitrary<Object>) a;
    }

    private static Op construct(Class<?> c, List<Object> args) {
        Class<?>[] types = new Class<?>[c.getRecordComponents().length];
        for (int i = 0; i < types.length; i++) types[i] = c.getRecordComponents()[i].getType();
        try {
            return (Op) c.getDeclaredConstructor(types).newInstance(args.toArray());
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof RuntimeException) return null;
            throw new AssertionError(e);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    private static String reflectiveForm(Op op) {
        StringBuilder sb = new StringBuilder(op.getClass().getSimpleName()).append('(');
        RecordComponent[] rc = op.getClass().getRecordComponents();
        for (int i = 0; i < rc.length; i++) {
            Object v;
            try {
                v = rc[i].getAccessor().invoke(op);
            } catch (ReflectiveOperationException e) {
                throw new AssertionError(e);
            }
            sb.append(i > 0 ? ", " : "").append(rc[i].getName()).append('=')
                    .append(v instanceof List<?> l ? l.toString().replace(" ", "") : String.valueOf(v));
        }
        return sb.append(')').toString();
    }

    private static List<Class<?>> records(Class<?> sealed, List<Class<?>> out) {
        for (Class<?> c : sealed.getPermittedSubclasses()) {
            if (c.isRecord()) out.add(c);
            else records(c, out);
        }
        return out;
    }
}
