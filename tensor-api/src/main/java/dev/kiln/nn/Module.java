package dev.kiln.nn;

import dev.kiln.tensor.Tensor;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Base class of user models, like {@code torch.nn.Module}: tensor fields are its
 * parameters, {@code Module} fields (and arrays or lists of them) its sub-modules;
 * fields holding records (a {@code Weights} record, say) are searched through their
 * components.
 * Subclasses define {@code forward(...)} methods in plain eager code.
 */
public abstract class Module {
    private static final ConcurrentHashMap<Class<?>, List<Field>> FIELDS = new ConcurrentHashMap<>();
    /**
     * Record classes' components with their accessors, found once: a compiled module collects its
     * parameters on every call, and {@code Class.getRecordComponents} builds new objects each time.
     */
    private static final ConcurrentHashMap<Class<?>, List<Component>> COMPONENTS = new ConcurrentHashMap<>();

    private record Component(String name, java.lang.reflect.Method accessor) {}

    /**
     * Parameters by dotted path ({@code "mlp.up.weight"}, {@code "layers.3.norm.weight"}), in a
     * stable order: fields sorted by name, superclass fields first. A tensor reachable
     * twice (tied weights) is listed once, under its first path.
     */
    public final Map<String, Tensor> namedParameters() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        collect(this, "", out, new IdentityHashMap<>(), new IdentityHashMap<>());
        return out;
    }

    /** The sub-module classes in walk order: changes when a sub-module is replaced by another kind. */
    public final List<Class<?>> structure() {
        List<Class<?>> out = new ArrayList<>();
        structure(this, out, new IdentityHashMap<>());
        return out;
    }

    private static void collect(Object m, String prefix, Map<String, Tensor> out, Map<Object, Boolean> seenTensors,
                                Map<Object, Boolean> seenModules) {
        if (seenModules.put(m, Boolean.TRUE) != null) return;
        for (Field f : fields(m.getClass())) {
            Object v = read(f, m);
            visit(v, prefix + f.getName(), out, seenTensors, seenModules);
        }
    }

    private static void visit(Object v, String path, Map<String, Tensor> out, Map<Object, Boolean> seenTensors,
                              Map<Object, Boolean> seenModules) {
        switch (v) {
            case Tensor t -> {
                if (seenTensors.put(t, Boolean.TRUE) == null) out.put(path, t);
            }
            case Module sub -> collect(sub, path + ".", out, seenTensors, seenModules);
            case Object[] arr -> {
                for (int i = 0; i < arr.length; i++) visit(arr[i], path + "." + i, out, seenTensors, seenModules);
            }
            case Record r -> {
                for (Component c : components(r.getClass())) visit(read(c, r), path + "." + c.name(), out, seenTensors, seenModules);
            }
            case List<?> list -> {
                for (int i = 0; i < list.size(); i++) visit(list.get(i), path + "." + i, out, seenTensors, seenModules);
            }
            case null, default -> { }
        }
    }

    private static void structure(Object v, List<Class<?>> out, Map<Object, Boolean> seen) {
        switch (v) {
            case Module m -> {
                if (seen.put(m, Boolean.TRUE) != null) return;
                out.add(m.getClass());
                for (Field f : fields(m.getClass())) structure(read(f, m), out, seen);
            }
            case Object[] arr -> { for (Object o : arr) structure(o, out, seen); }
            case List<?> list -> { for (Object o : list) structure(o, out, seen); }
            case null, default -> { }
        }
    }

    private static List<Component> components(Class<?> recordClass) {
        return COMPONENTS.computeIfAbsent(recordClass, k -> {
            List<Component> out = new ArrayList<>();
            for (var c : k.getRecordComponents()) {
                java.lang.reflect.Method accessor = c.getAccessor();
                accessor.setAccessible(true);
                out.add(new Component(c.getName(), accessor));
            }
            return List.copyOf(out);
        });
    }

    private static Object read(Component c, Record r) {
        try {
            return c.accessor().invoke(r);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read record component " + c.name() + " of " + r.getClass().getName(), e);
        }
    }

    private static List<Field> fields(Class<?> c) {
        return FIELDS.computeIfAbsent(c, k -> {
            List<Field> out = new ArrayList<>();
            List<Class<?>> chain = new ArrayList<>();
            for (Class<?> x = k; x != null && x != Module.class && x != Object.class; x = x.getSuperclass()) chain.addFirst(x);
            for (Class<?> x : chain) {
                Field[] declared = x.getDeclaredFields();
                Arrays.sort(declared, Comparator.comparing(Field::getName));
                for (Field f : declared) {
                    if (Modifier.isStatic(f.getModifiers()) || f.isSynthetic()) continue;
                    f.setAccessible(true);
                    out.add(f);
                }
            }
            return List.copyOf(out);
        });
    }

    private static Object read(Field f, Object o) {
        try {
            return f.get(o);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("cannot read " + f, e);
        }
    }
}
