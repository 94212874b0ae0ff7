package dev.kiln;

import dev.kiln.tensor.Tensor;
import dev.kiln.trace.CompiledFunction;
import dev.kiln.trace.ModuleCompiler;

import java.util.List;

/**
 * The front door: {@code Kiln.compile(fn)} turns eager tensor code into compiled graphs,
 * as {@code torch.compile} does.
 *
 * <h2>The replay contract</h2>
 * On a call whose input signature (tensor dtypes, shapes and contiguity, scalar
 * argument values) has been seen, the user's Java code is <em>not run again</em>: the
 * graph recorded the first time is replayed. So a compiled function's result must
 * depend only on its tensor arguments, its module's parameters and its scalar
 * arguments. Reading a mutable field, a counter, the clock or a random generator
 * inside it is frozen at trace time. Tensors captured from outside the call are
 * graph inputs by reference: their current contents are used on every call.
 * Host access to tensor data ({@code item()}, {@code toFloatArray()}, branching on
 * values) splits the function into several graphs (a graph break); such a function
 * re-runs its Java code on every call, and {@link #explain} says so.
 */
public final class Kiln {
    private Kiln() {}

    public static <R> Fn1<R> compile(Fn1<R> fn) { return compile(fn, CompileOptions.defaults()); }
    public static <R> Fn2<R> compile(Fn2<R> fn) { return compile(fn, CompileOptions.defaults()); }
    public static <R> Fn3<R> compile(Fn3<R> fn) { return compile(fn, CompileOptions.defaults()); }
    public static <R> Fn4<R> compile(Fn4<R> fn) { return compile(fn, CompileOptions.defaults()); }

    public static <R> Fn1<R> compile(Fn1<R> fn, CompileOptions options) {
        CompiledFunction c = new CompiledFunction(describe(fn), a -> fn.apply((Tensor) a[0]), options, List.of("a"));
        return new Compiled1<>(c);
    }

    public static <R> Fn2<R> compile(Fn2<R> fn, CompileOptions options) {
        CompiledFunction c = new CompiledFunction(describe(fn), a -> fn.apply((Tensor) a[0], (Tensor) a[1]), options, List.of("a", "b"));
        return new Compiled2<>(c);
    }

    public static <R> Fn3<R> compile(Fn3<R> fn, CompileOptions options) {
        CompiledFunction c = new CompiledFunction(describe(fn), a -> fn.apply((Tensor) a[0], (Tensor) a[1], (Tensor) a[2]),
                options, List.of("a", "b", "c"));
        return new Compiled3<>(c);
    }

    public static <R> Fn4<R> compile(Fn4<R> fn, CompileOptions options) {
        CompiledFunction c = new CompiledFunction(describe(fn),
                a -> fn.apply((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3]), options, List.of("a", "b", "c", "d"));
        return new Compiled4<>(c);
    }

    /**
     * Compiles a function of any arguments: tensors become graph inputs, other values
     * (numbers, booleans, strings, enums, int arrays) are guarded by value. Named apart
     * from {@code compile} because a one-parameter lambda would fit both.
     */
    public static <R> FnN<R> compileN(FnN<R> fn) { return compileN(fn, CompileOptions.defaults()); }

    public static <R> FnN<R> compileN(FnN<R> fn, CompileOptions options) {
        CompiledFunction c = new CompiledFunction(describe(fn), fn::apply, options, List.of());
        return new CompiledN<>(c);
    }

    /**
     * Compiles a module: returns an instance of a generated subclass of the module's class,
     * holding the same fields, whose {@code forward} methods go through the compiler.
     * Parameters (tensor fields, also of sub-modules) are graph inputs read on every call,
     * so updating a weight needs no recompile and two instances share compiled graphs.
     */
    public static <M> M compile(M module) { return compile(module, CompileOptions.defaults()); }

    public static <M> M compile(M module, CompileOptions options) { return ModuleCompiler.compile(module, options); }

    /** What the compiler did with {@code compiled} when called with {@code args} (this call runs it). */
    public static Explanation explain(Object compiled, Object... args) {
        return Explanation.of(compiled, args);
    }

    static CompiledFunction unwrap(Object compiled) {
        return switch (compiled) {
            case Compiled1<?> c -> c.fn;
            case Compiled2<?> c -> c.fn;
            case Compiled3<?> c -> c.fn;
            case Compiled4<?> c -> c.fn;
            case CompiledN<?> c -> c.fn;
            default -> ModuleCompiler.compiledFunctionOf(compiled);
        };
    }

    private static String describe(Object fn) {
        String n = fn.getClass().getName();
        int lambda = n.indexOf("$$Lambda");
        return lambda > 0 ? "lambda in " + n.substring(n.lastIndexOf('.', lambda) + 1, lambda) : n;
    }

    @SuppressWarnings("unchecked")
    private record Compiled1<R>(CompiledFunction fn) implements Fn1<R> {
        public R apply(Tensor a) { return (R) fn.call(new Object[] {a}); }
    }

    @SuppressWarnings("unchecked")
    private record Compiled2<R>(CompiledFunction fn) implements Fn2<R> {
        public R apply(Tensor a, Tensor b) { return (R) fn.call(new Object[] {a, b}); }
    }

    @SuppressWarnings("unchecked")
    private record Compiled3<R>(CompiledFunction fn) implements Fn3<R> {
        public R apply(Tensor a, Tensor b, Tensor c) { return (R) fn.call(new Object[] {a, b, c}); }
    }

    @SuppressWarnings("unchecked")
    private record Compiled4<R>(CompiledFunction fn) implements Fn4<R> {
        public R apply(Tensor a, Tensor b, Tensor c, Tensor d) { return (R) fn.call(new Object[] {a, b, c, d}); }
    }

    @SuppressWarnings("unchecked")
    private record CompiledN<R>(CompiledFunction fn) implements FnN<R> {
        public R apply(Object... args) { return (R) fn.call(args.clone()); }
    }
}
