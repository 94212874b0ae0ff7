package dev.kiln.trace;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Compiled equals eager over random programs: sequences of pointwise ops with
 * broadcasting, scalar ops, views (transpose, slice, reshape, expand), reductions,
 * softmax and matmul over random shapes, replayed across calls and recompiles.
 */
public class RandomProgramProperties {

    /** The options programs compile with; other backends' tests override this. */
    protected CompileOptions options() { return CompileOptions.defaults().backend(Backend.EAGER); }

    /** One step of a program: reads values by index and appends its result. */
    private record Step(String kind, int a, int b, int dim, double scalar) {}

    private record Program(List<int[]> inputShapes, List<Step> steps) {
        Tensor run(Object... args) {
            List<Tensor> values = new ArrayList<>();
            for (Object o : args) values.add((Tensor) o);
            for (Step s : steps) values.add(apply(s, values));
            return values.getLast();
        }
    }

    /** A random program of this generator and inputs for it, for properties of other layers over the same programs. */
    public record Sample(String steps, FnN<Tensor> program, Tensor[] inputs) {}

    public static Sample sample(long seed) {
        Program p = generate(seed);
        return new Sample(p.steps().toString(), p::run, inputs(p, seed, 0));
    }

    private static Tensor apply(Step s, List<Tensor> v) {
        Tensor a = v.get(s.a());
        return switch (s.kind()) {
            case "tanh" -> a.tanh();
            case "sigmoid" -> a.sigmoid();
            case "relu" -> a.relu();
            case "neg" -> a.neg();
            case "mulScalar" -> a.mul(s.scalar());
            case "addScalar" -> a.add(s.scalar());
            case "add" -> a.add(v.get(s.b()));
            case "mul" -> a.mul(v.get(s.b()));
            case "maximum" -> a.maximum(v.get(s.b()));
            case "transpose" -> a.mT();
            case "slice" -> a.slice(-1, 0, Math.max(1, a.size(-1) - 1), 1);
            case "flatten" -> a.reshape(-1);
            case "sum" -> a.sum(s.dim() % a.rank(), true);
            case "mean" -> a.mean(s.dim() % a.rank(), false);
            case "softmax" -> a.softmax(s.dim() % a.rank());
            case "matmulT" -> a.matmul(a.mT());
            case "expand" -> a.unsqueeze(0).expand(2, -1, -1);
            default -> throw new IllegalStateException(s.kind());
        };
    }

    /** A random well-typed program over rank-2 inputs; every step keeps rank >= 2 where later steps need it. */
    private static Program generate(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int rows = 1 + r.nextInt(5), cols = 1 + r.nextInt(6);
        List<int[]> inputs = List.of(new int[] {rows, cols}, new int[] {1, cols}, new int[] {rows, 1});
        List<int[]> shapes = new ArrayList<>(inputs);
        List<Step> steps = new ArrayList<>();
        String[] unary = {"tanh", "sigmoid", "relu", "neg", "mulScalar", "addScalar", "transpose", "slice", "softmax",
                "matmulT", "expand", "sum", "mean", "flatten"};
        for (int i = 0, n = 3 + r.nextInt(8); i < n; i++) {
            int a = r.nextInt(shapes.size());
            int[] sa = shapes.get(a);
            if (r.nextInt(3) == 0) {
                int b = r.nextInt(shapes.size());
                int[] out = broadcast(sa, shapes.get(b));
                if (out != null) {
                    String kind = new String[] {"add", "mul", "maximum"}[r.nextInt(3)];
                    steps.add(new Step(kind, a, b, 0, 0));
                    shapes.add(out);
                    continue;
                }
            }
            String kind = unary[r.nextInt(unary.length)];
            int dim = r.nextInt(8);
            int[] out = resultShape(kind, sa, dim);
            if (out == null) continue;
            steps.add(new Step(kind, a, -1, dim, r.nextDouble(-2, 2)));
            shapes.add(out);
        }
        if (steps.isEmpty()) steps.add(new Step("tanh", 0, -1, 0, 0));
        return new Program(inputs, steps);
    }

    private static int[] resultShape(String kind, int[] s, int dim) {
        int rank = s.length;
        return switch (kind) {
            case "transpose" -> rank < 2 ? null : swapLast(s);
            case "slice", "tanh", "sigmoid", "relu", "neg", "mulScalar", "addScalar" -> s.clone();
            case "softmax" -> rank == 0 ? null : s.clone();
            case "flatten" -> new int[] {java.util.Arrays.stream(s).reduce(1, (x, y) -> x * y)};
            case "sum" -> { if (rank == 0) yield null; int[] o = s.clone(); o[dim % rank] = 1; yield o; }
            case "mean" -> {
                if (rank <= 2) yield null;
                int d = dim % rank;
                int[] o = new int[rank - 1];
                for (int i = 0, j = 0; i < rank; i++) if (i != d) o[j++] = s[i];
                yield o;
            }
            case "matmulT" -> rank < 2 ? null : matmulT(s);
            case "expand" -> rank != 2 ? null : new int[] {2, s[0], s[1]};
            default -> throw new IllegalStateException(kind);
        };
    }

    private static int[] swapLast(int[] s) {
        int[] o = s.clone();
        o[s.length - 1] = s[s.length - 2];
        o[s.length - 2] = s[s.length - 1];
        return o;
    }

    private static int[] matmulT(int[] s) {
        int[] o = s.clone();
        o[s.length - 1] = s[s.length - 2];
        return o;
    }

    private static int[] broadcast(int[] a, int[] b) {
        int rank = Math.max(a.length, b.length);
        int[] out = new int[rank];
        for (int i = 1; i <= rank; i++) {
            int x = i <= a.length ? a[a.length - i] : 1, y = i <= b.length ? b[b.length - i] : 1;
            if (x != y && x != 1 && y != 1) return null;
            out[rank - i] = Math.max(x, y);
        }
        return out;
    }

    private static Tensor[] inputs(Program p, long seed, int rowsOverride) {
        Tensor[] t = new Tensor[p.inputShapes().size()];
        for (int i = 0; i < t.length; i++) {
            int[] s = p.inputShapes().get(i).clone();
            if (rowsOverride > 0 && s[0] != 1) s[0] = rowsOverride;
            t[i] = Tensor.randn(seed + i, s);
        }
        return t;
    }

    @Property(tries = 60)
    public void compiledEqualsEager(@ForAll long seed, @ForAll @IntRange(min = 1, max = 7) int otherRows) {
        Program p = generate(seed);
        FnN<Tensor> compiled = Kiln.compileN(p::run, options());
        int[] rows = {0, 0, otherRows, otherRows + 2, otherRows + 5};
        for (int call = 0; call < rows.length; call++) {
            // Calls 0 and 1 share a signature (replay); call 2 may change the row count (recompile, and the
            // rows become symbolic); calls 3 and 4 run further row counts on what that compiled.
            Tensor[] in = inputs(p, seed * 31 + call, rows[call]);
            Object[] args = in.clone();
            Tensor eager;
            try {
                eager = p.run(args);
            } catch (KilnException e) {
                // The program does not fit the new sizes: compiling must raise the same error.
                KilnException c = assertThrows(KilnException.class, () -> compiled.apply(args));
                assertEquals(e.getMessage(), c.getMessage());
                continue;
            }
            Tensor got = compiled.apply(args);
            assertEquals(eager.shape(), got.shape(), p.steps().toString());
            assertArrayEquals(eager.toFloatArray(), got.toFloatArray(), 1e-6f, p.steps().toString());
        }
    }
}
