package dev.kiln.trace;

import dev.kiln.CompileOptions;
import dev.kiln.nn.Module;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;
import net.bytebuddy.ByteBuddy;
import net.bytebuddy.dynamic.loading.ClassLoadingStrategy;
import net.bytebuddy.implementation.MethodDelegation;
import net.bytebuddy.implementation.bind.annotation.AllArguments;
import net.bytebuddy.implementation.bind.annotation.Origin;
import net.bytebuddy.implementation.bind.annotation.RuntimeType;
import net.bytebuddy.implementation.bind.annotation.SuperMethod;
import net.bytebuddy.implementation.bind.annotation.This;

import java.lang.invoke.MethodHandles;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static net.bytebuddy.matcher.ElementMatchers.isStatic;
import static net.bytebuddy.matcher.ElementMatchers.named;
import static net.bytebuddy.matcher.ElementMatchers.not;

/**
 * Compiles user modules: a Byte Buddy subclass of the module's class overrides its
 * {@code forward} methods to go through a {@link CompiledFunction}; the returned
 * instance holds the same field values as the original. Parameters are passed as
 * graph inputs on every call, read from the instance called, so instances of one
 * class share compiled graphs and weight updates need no recompile.
 */
public final class ModuleCompiler {
    private record ProxyKey(Class<?> type, CompileOptions options) {}

    private record FunctionKey(Class<?> proxy, Method method) {}

    private record Call(Object self, Method superMethod) {}

    private static final Map<ProxyKey, Class<?>> PROXIES = new ConcurrentHashMap<>();
    private static final Map<Class<?>, CompileOptions> OPTIONS = new ConcurrentHashMap<>();
    private static final Map<FunctionKey, CompiledFunction> FUNCTIONS = new ConcurrentHashMap<>();
    private static final ThreadLocal<Call> CURRENT = new ThreadLocal<>();

    private ModuleCompiler() {}

    public static <M> M compile(M module, CompileOptions options) {
        if (!(module instanceof Module)) {
            throw new KilnException("Kiln.compile(module): " + module.getClass().getName()
                    + " must extend dev.kiln.nn.Module (its tensor fields are the parameters)");
        }
        Class<?> type = module.getClass();
        if (OPTIONS.containsKey(type)) {
            throw new KilnException("Kiln.compile(module): " + type.getSuperclass().getSimpleName() + " is already compiled");
        }
        if (Modifier.isFinal(type.getModifiers())) {
            throw new KilnException("Kiln.compile(module): " + type.getName() + " is final; Kiln compiles a module by subclassing it");
        }
        if (forwardMethods(type).isEmpty()) {
            throw new KilnException("Kiln.compile(module): " + type.getName() + " has no non-final, non-private forward(...) method");
        }
        Class<?> proxy = PROXIES.computeIfAbsent(new ProxyKey(type, options), k -> generate(type, options));
        @SuppressWarnings("unchecked")
        M copy = (M) instantiate(proxy);
        copyFields(module, copy, type);
        return copy;
    }

    private static List<Method> forwardMethods(Class<?> type) {
        List<Method> out = new ArrayList<>();
        for (Class<?> c = type; c != null && c != Module.class; c = c.getSuperclass()) {
            for (Method m : c.getDeclaredMethods()) {
                int mod = m.getModifiers();
                if (m.getName().equals("forward") && !Modifier.isStatic(mod) && !Modifier.isFinal(mod) && !Modifier.isPrivate(mod)) {
                    out.add(m);
                }
            }
        }
        return out;
    }

    private static Class<?> generate(Class<?> type, CompileOptions options) {
        try {
            Class<?> proxy = new ByteBuddy()
                    .subclass(type)
                    .name(type.getName() + "$KilnCompiled$" + Integer.toHexString(options.hashCode()))
                    .method(named("forward").and(not(isStatic())))
                    .intercept(MethodDelegation.to(ForwardInterceptor.class))
                    .make()
                    .load(type.getClassLoader(), ClassLoadingStrategy.UsingLookup.of(
                            MethodHandles.privateLookupIn(type, MethodHandles.lookup())))
                    .getLoaded();
            OPTIONS.put(proxy, options);
            return proxy;
        } catch (IllegalAccessException e) {
            throw new KilnException("Kiln.compile(module): cannot subclass " + type.getName() + ": " + e.getMessage(), e);
        }
    }

    /** Creates an instance without running a constructor (the original's state is copied in after). */
    private static Object instantiate(Class<?> proxy) {
        try {
            @SuppressWarnings("sunapi")
            sun.reflect.ReflectionFactory rf = sun.reflect.ReflectionFactory.getReflectionFactory();
            Constructor<?> ctor = rf.newConstructorForSerialization(proxy, Object.class.getDeclaredConstructor());
            return ctor.newInstance();
        } catch (ReflectiveOperationException e) {
            throw new KilnException("Kiln.compile(module): cannot instantiate " + proxy.getName(), e);
        }
    }

    private static void copyFields(Object from, Object to, Class<?> type) {
        for (Class<?> c = type; c != null && c != Object.class; c = c.getSuperclass()) {
            for (Field f : c.getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers())) continue;
                try {
                    f.setAccessible(true);
                    f.set(to, f.get(from));
                } catch (IllegalAccessException e) {
                    throw new KilnException("Kiln.compile(module): cannot copy field " + f, e);
                }
            }
        }
    }

    public static boolean isCompiledModule(Object o) { return OPTIONS.containsKey(o.getClass()); }

    /** The compiled function behind the (single) forward method of a compiled module. */
    public static CompiledFunction compiledFunctionOf(Object compiled) {
        if (!isCompiledModule(compiled)) {
            throw new KilnException(compiled.getClass().getName() + " is not a compiled function or module");
        }
        List<Method> forwards = forwardMethods(compiled.getClass().getSuperclass());
        if (forwards.size() != 1) {
            throw new KilnException("explain: " + compiled.getClass().getSuperclass().getSimpleName()
                    + " has several forward methods; explain one by calling it first");
        }
        return function(compiled.getClass(), forwards.get(0));
    }

    /** Calls the compiled module's (single) forward method with {@code userArgs}, as user code would. */
    public static Object invokeForward(Object compiled, Object[] userArgs) {
        List<Method> forwards = forwardMethods(compiled.getClass().getSuperclass());
        for (Method m : forwards) {
            if (m.getParameterCount() != userArgs.length) continue;
            try {
                m.setAccessible(true);
                return m.invoke(compiled, userArgs);
            } catch (InvocationTargetException e) {
                if (e.getCause() instanceof RuntimeException re) throw re;
                throw new KilnException("forward failed", e.getCause());
            } catch (IllegalAccessException e) {
                throw new KilnException("cannot call forward", e);
            }
        }
        throw new KilnException("explain: " + compiled.getClass().getSuperclass().getSimpleName() + " has no forward method of "
                + userArgs.length + " arguments");
    }

    /** The arguments the compiled function of a module takes: the user's, then parameters, then structure. */
    public static Object[] fullArgs(Object module, Object[] userArgs) {
        Module m = (Module) module;
        Map<String, Tensor> params = m.namedParameters();
        Object[] full = Arrays.copyOf(userArgs, userArgs.length + params.size() + 1);
        int i = userArgs.length;
        for (Tensor t : params.values()) full[i++] = t;
        full[i] = m.structure();
        return full;
    }

    private static CompiledFunction function(Class<?> proxy, Method method) {
        return FUNCTIONS.computeIfAbsent(new FunctionKey(proxy, method), k -> {
            int userArity = method.getParameterCount();
            List<String> names = new ArrayList<>();
            for (var p : method.getParameters()) names.add(p.getName());
            return new CompiledFunction(method.getDeclaringClass().getSimpleName() + ".forward", full -> {
                Call call = CURRENT.get();
                try {
                    return call.superMethod().invoke(call.self(), Arrays.copyOf(full, userArity));
                } catch (InvocationTargetException e) {
                    if (e.getCause() instanceof RuntimeException re) throw re;
                    if (e.getCause() instanceof Error err) throw err;
                    throw new KilnException("forward failed", e.getCause());
                } catch (IllegalAccessException e) {
                    throw new KilnException("cannot call forward", e);
                }
            }, OPTIONS.get(proxy), names, userArity);
        });
    }

    /** Byte Buddy's target for every intercepted {@code forward}. */
    public static final class ForwardInterceptor {
        private ForwardInterceptor() {}

        @RuntimeType
        public static Object intercept(@This Object self, @Origin Method method, @AllArguments Object[] args,
                                       @SuperMethod Method superMethod) {
            CompiledFunction fn = function(self.getClass(), method);
            Call previous = CURRENT.get();
            CURRENT.set(new Call(self, superMethod));
            try {
                return fn.call(fullArgs(self, args));
            } finally {
                if (previous == null) CURRENT.remove();
                else CURRENT.set(previous);
            }
        }
    }
}
