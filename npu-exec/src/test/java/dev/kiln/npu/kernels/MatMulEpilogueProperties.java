package dev.kiln.npu.kernels;

import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.npu.kernels.gemm.Epilogue;
import dev.kiln.npu.kernels.gemm.Epilogue.Source;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;

import java.util.Arrays;
import java.util.List;
import java.util.function.DoubleUnaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * matmul with a fused epilogue against a double-precision reference (the product, then
 * the epilogue in double) and, bit for bit, against the same ops run one by one.
 */
class MatMulEpilogueProperties {

    /** The epilogues under test: each a tile program with its sources, the eager ops and a double reference. */
    enum Kind {
        BIAS_GELU, BIAS_RELU, BIAS_SILU, SCALED_GELU_TANH, RESIDUAL, BIAS_TANH_RESIDUAL_CLAMP;

        Epilogue epilogue() {
            return switch (this) {
                case BIAS_GELU -> biasThen(UnaryFn.GELU);
                case BIAS_RELU -> biasThen(UnaryFn.RELU);
                case BIAS_SILU -> biasThen(UnaryFn.SILU);
                case SCALED_GELU_TANH -> new Epilogue(program(2, List.of(
                        new TileInstr.Broadcast(1, 0), new TileInstr.Load(0, 1), new TileInstr.Binary(BinaryFn.MUL, 1, 0, 1),
                        new TileInstr.Unary(UnaryFn.GELU_TANH, 1, 1), new TileInstr.Store(1, 0)), false, true),
                        List.of(Source.ACCUMULATOR, Source.SCALAR));
                case RESIDUAL -> new Epilogue(program(2, List.of(
                        new TileInstr.Load(0, 0), new TileInstr.Load(1, 1), new TileInstr.Binary(BinaryFn.ADD, 0, 1, 0),
                        new TileInstr.Store(0, 0)), false, false), List.of(Source.ACCUMULATOR, Source.FULL));
                case BIAS_TANH_RESIDUAL_CLAMP -> new Epilogue(program(2, List.of(
                        new TileInstr.Load(1, 0), new TileInstr.Load(0, 1), new TileInstr.Binary(BinaryFn.ADD, 1, 0, 0),
                        new TileInstr.Unary(UnaryFn.TANH, 0, 0), new TileInstr.Load(2, 1), new TileInstr.Binary(BinaryFn.ADD, 0, 1, 1),
                        new TileInstr.Clamp(-0.5f, 1.5f, 1, 1), new TileInstr.Store(1, 0)), false, false, false),
                        // The accumulator need not be the first input.
                        List.of(Source.ROW, Source.ACCUMULATOR, Source.FULL));
            };
        }

        private static Epilogue biasThen(UnaryFn fn) {
            return new Epilogue(program(2, List.of(new TileInstr.Load(0, 0), new TileInstr.Load(1, 1),
                    new TileInstr.Binary(BinaryFn.ADD, 0, 1, 0), new TileInstr.Unary(fn, 0, 0), new TileInstr.Store(0, 0)), false, false),
                    List.of(Source.ACCUMULATOR, Source.ROW));
        }

        private static TileProgram program(int registers, List<TileInstr> code, boolean... scalar) {
            List<TileProgram.InputSpec> in = new java.util.ArrayList<>();
            for (boolean s : scalar) in.add(new TileProgram.InputSpec(DType.FLOAT32, s));
            return new TileProgram(in, 1, registers, code);
        }

        /** The operands (inputs but the accumulator, in order) for a product of {@code shape}. */
        Tensor[] operands(Shape shape, long seed, Presentation p) {
            int n = shape.dims()[shape.rank() - 1];
            int[] dims = shape.dims();
            Tensor row = TestTensors.tensor(TestTensors.randomData(n, seed, 1, false), DType.FLOAT32, n);
            Tensor full = TestTensors.tensor(TestTensors.randomData(shape.numel(), seed + 1, 1, false), DType.FLOAT32, p, dims);
            return switch (this) {
                case BIAS_GELU, BIAS_RELU, BIAS_SILU -> new Tensor[] {row};
                case SCALED_GELU_TANH -> new Tensor[] {Tensor.scalar(0.75f)};
                case RESIDUAL -> new Tensor[] {full};
                case BIAS_TANH_RESIDUAL_CLAMP -> new Tensor[] {row, full};
            };
        }

        /** The same computation op by op on the eager kernels. */
        Tensor eager(Tensor product, Tensor[] ops) {
            return switch (this) {
                case BIAS_GELU -> product.add(ops[0]).gelu();
                case BIAS_RELU -> product.add(ops[0]).relu();
                case BIAS_SILU -> product.add(ops[0]).silu();
                case SCALED_GELU_TANH -> dev.kiln.nn.F.gelu(product.mul(ops[0]), "tanh");
                case RESIDUAL -> product.add(ops[0]);
                case BIAS_TANH_RESIDUAL_CLAMP -> ops[0].add(product).tanh().add(ops[1]).clamp(-0.5, 1.5);
            };
        }

        /** Element i of the result in double, from the product's value z. */
        double reference(double z, int i, int n, double[][] ops) {
            return switch (this) {
                case BIAS_GELU -> gelu(z + ops[0][i % n]);
                case BIAS_RELU -> Math.max(0, z + ops[0][i % n]);
                case BIAS_SILU -> silu(z + ops[0][i % n]);
                case SCALED_GELU_TANH -> geluTanh(z * ops[0][0]);
                case RESIDUAL -> z + ops[0][i];
                case BIAS_TANH_RESIDUAL_CLAMP -> Math.min(1.5, Math.max(-0.5, Math.tanh(ops[0][i % n] + z) + ops[1][i]));
            };
        }

        /** A bound on |d reference / d z|, to carry the product's error through. */
        double slope() { return this == SCALED_GELU_TANH ? 0.75 * 1.13 : 1.13; }
    }

    @Provide
    Arbitrary<Integer> dims() {
        // 1, ragged, and past the micro-kernel tile (8 x 48 floats) and the vector width.
        return Arbitraries.frequencyOf(
                Tuple.of(2, Arbitraries.just(1)),
                Tuple.of(8, Arbitraries.integers().between(2, 20)),
                Tuple.of(4, Arbitraries.integers().between(21, 120)));
    }

    @Property(tries = 150)
    void matchesDoubleReferenceAndTheUnfusedOps(@ForAll("dims") int m, @ForAll("dims") int k, @ForAll("dims") int n,
                                                @ForAll @IntRange(min = 0, max = 2) int batch, @ForAll Kind kind,
                                                @ForAll Presentation pa, @ForAll Presentation pb, @ForAll Presentation pf,
                                                @ForAll long seed) {
        int[] aShape = batch == 0 ? new int[] {m, k} : new int[] {batch, m, k};
        Tensor a = TestTensors.tensor(TestTensors.randomData((long) Shape.of(aShape).numel(), seed, 2, false), DType.FLOAT32, pa, aShape);
        Tensor b = TestTensors.tensor(TestTensors.randomData((long) k * n, seed + 1, 2, false), DType.FLOAT32, pb, k, n);
        check(kind, a, b, pf, seed);
    }

    @Property(tries = 30)
    void linearLayerShapes(@ForAll @IntRange(min = 1, max = 2) int lead, @ForAll("dims") int seq, @ForAll("dims") int in,
                           @ForAll("dims") int out, @ForAll Kind kind, @ForAll long seed) {
        // x [lead, seq, in] @ w.mT() with w [out, in] contiguous: B is a transposed view.
        Tensor x = TestTensors.tensor(TestTensors.randomData((long) lead * seq * in, seed, 2, false), DType.FLOAT32, lead, seq, in);
        Tensor w = TestTensors.tensor(TestTensors.randomData((long) out * in, seed + 1, 2, false), DType.FLOAT32, out, in);
        check(kind, x, w.mT(), Presentation.CONTIGUOUS, seed);
    }

    @Property(tries = 25)
    void widerProductsPackFullPanelsInTheKernel(@ForAll @IntRange(min = 1, max = 40) int m, @ForAll @IntRange(min = 1, max = 700) int k,
                                @ForAll @IntRange(min = 96, max = 300) int n, @ForAll Presentation pa, @ForAll long seed) {
        // Several full B panels (48 floats wide on AVX-512), a ragged last one, and K past one slice:
        // with B's rows contiguous, full panels are packed by the first tile's micro-kernel.
        Tensor a = TestTensors.tensor(TestTensors.randomData((long) m * k, seed, 2, false), DType.FLOAT32, pa, m, k);
        Tensor b = TestTensors.tensor(TestTensors.randomData((long) k * n, seed + 1, 2, false), DType.FLOAT32, k, n);
        check(Kind.BIAS_RELU, a, b, Presentation.CONTIGUOUS, seed);
    }

    @Example
    void w2ShapesOnThePackedKernelsMatchTheUnfusedOps() {
        // M = 64 with K and N in the thousands: several K slices, both workers, the B panels packed in the micro-kernel.
        Tensor x = TestTensors.tensor(TestTensors.randomData(64L * 520, 1, 1, false), DType.FLOAT32, 64, 520);
        Tensor w = TestTensors.tensor(TestTensors.randomData(520L * 400, 2, 1, false), DType.FLOAT32, 520, 400);
        for (Kind kind : List.of(Kind.BIAS_GELU, Kind.BIAS_TANH_RESIDUAL_CLAMP)) {
            check(kind, x, w, Presentation.CONTIGUOUS, 3);
            check(kind, x, w.mT().contiguous().mT(), Presentation.CONTIGUOUS, 3);
        }
    }

    @Example
    void tallProductsFinishEachStripOfEveryABlock() {
        // More rows than one A block (192 rows on AVX-512) per worker: B is packed into slabs and
        // each block's strips are finished after the last K slice.
        Tensor a = TestTensors.tensor(TestTensors.randomData(400L * 530, 4, 1, false), DType.FLOAT32, 400, 530);
        Tensor b = TestTensors.tensor(TestTensors.randomData(530L * 500, 5, 1, false), DType.FLOAT32, 530, 500);
        check(Kind.BIAS_TANH_RESIDUAL_CLAMP, a, b, Presentation.STRIDED, 6);
    }

    @Example
    void wholeRowsOfAResidualRunInPiecesOfSeveralRows() {
        // More rows than columns: each worker takes whole rows, which the epilogue runs several at a time
        // (160 columns: 102 rows to a piece, and a shorter last one).
        Tensor a = TestTensors.tensor(TestTensors.randomData(600L * 300, 7, 1, false), DType.FLOAT32, 600, 300);
        Tensor b = TestTensors.tensor(TestTensors.randomData(300L * 160, 8, 1, false), DType.FLOAT32, 300, 160);
        check(Kind.RESIDUAL, a, b, Presentation.CONTIGUOUS, 9);
        check(Kind.RESIDUAL, a, b, Presentation.STRIDED, 10);
    }

    @Example
    void anEmptySumStillRunsTheEpilogue() {
        Tensor a = Tensor.empty(DType.FLOAT32, Shape.of(3, 0)), b = Tensor.empty(DType.FLOAT32, Shape.of(0, 5));
        Tensor bias = TestTensors.tensor(new double[] {-2, -1, 0, 1, 2}, DType.FLOAT32, 5);
        Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(3, 5));
        MatMul.matmul(a, b, out, Kind.BIAS_RELU.epilogue(), bias);
        assertArrayEquals(new double[] {0, 0, 0, 1, 2, 0, 0, 0, 1, 2, 0, 0, 0, 1, 2}, TestTensors.values(out));
    }

    @Example
    void badOperandsAreRefusedWithTheirShapes() {
        Tensor a = Tensor.randn(1, 4, 3), b = Tensor.randn(2, 3, 6), out = Tensor.empty(DType.FLOAT32, Shape.of(4, 6));
        Epilogue bias = Kind.BIAS_GELU.epilogue();
        KilnException wrongRow = assertThrows(KilnException.class, () -> MatMul.matmul(a, b, out, bias, Tensor.randn(3, 4)));
        assertTrue(wrongRow.getMessage().contains("a vector of 6 values (one per column") && wrongRow.getMessage().contains("[4]"), wrongRow.getMessage());
        KilnException column = assertThrows(KilnException.class, () -> MatMul.matmul(a, b, out, bias, Tensor.randn(3, 4, 1)));
        assertTrue(column.getMessage().contains("[4, 1]") || column.getMessage().contains("[4,1]"), column.getMessage());
        KilnException wrongFull = assertThrows(KilnException.class,
                () -> MatMul.matmul(a, b, out, Kind.RESIDUAL.epilogue(), Tensor.randn(3, 6)));
        assertTrue(wrongFull.getMessage().contains("of the output's shape"), wrongFull.getMessage());
        KilnException count = assertThrows(KilnException.class, () -> MatMul.matmul(a, b, out, bias));
        assertTrue(count.getMessage().contains("takes 1 operands, got 0"), count.getMessage());
        KilnException type = assertThrows(KilnException.class,
                () -> MatMul.matmul(a, b, out, bias, Tensor.randn(3, 6).to(DType.FLOAT64)));
        assertTrue(type.getMessage().contains("must be float32, got float64"), type.getMessage());
        KilnTypeException halves = assertThrows(KilnTypeException.class, () -> MatMul.matmul(a.to(DType.FLOAT64), b.to(DType.FLOAT64),
                Tensor.empty(DType.FLOAT64, Shape.of(4, 6)), bias, Tensor.randn(3, 6)));
        assertTrue(halves.getMessage().contains("float32"), halves.getMessage());
    }

    @Example
    void epiloguesAreCheckedWhenMade() {
        TileProgram twoInputs = Kind.BIAS_GELU.epilogue().program();
        IllegalArgumentException noAcc = assertThrows(IllegalArgumentException.class,
                () -> new Epilogue(twoInputs, List.of(Source.ROW, Source.ROW)));
        assertTrue(noAcc.getMessage().contains("exactly one input"), noAcc.getMessage());
        IllegalArgumentException kind = assertThrows(IllegalArgumentException.class,
                () -> new Epilogue(twoInputs, List.of(Source.ACCUMULATOR, Source.SCALAR)));
        assertTrue(kind.getMessage().contains("is a tile but its source is scalar"), kind.getMessage());
        assertEquals(Source.ROW, Source.ofToken("row"));
        assertThrows(IllegalArgumentException.class, () -> Source.ofToken("column"));
    }

    private static void check(Kind kind, Tensor a, Tensor b, Presentation pf, long seed) {
        Tensor product = a.matmul(b);
        Shape shape = product.shape();
        Tensor[] ops = kind.operands(shape, seed + 7, pf);
        Tensor fused = Tensor.empty(DType.FLOAT32, shape);
        MatMul.matmul(a, b, fused, kind.epilogue(), ops);

        double[] got = TestTensors.values(fused);
        double[] unfused = TestTensors.values(kind.eager(product, ops));
        // Bit for bit: the same GEMM and the same vector primitives, in the same order.
        for (int i = 0; i < got.length; i++) {
            if (Double.doubleToRawLongBits(got[i]) != Double.doubleToRawLongBits(unfused[i])) {
                fail(kind + " " + a.shape() + " @ " + b.shape() + ": element " + i + " is " + got[i] + ", op by op " + unfused[i]);
            }
        }
        MatMulReference.Expected e = MatMulReference.of(a, b);
        double[][] opValues = Arrays.stream(ops).map(TestTensors::values).toArray(double[][]::new);
        int n = shape.dims()[shape.rank() - 1];
        for (int i = 0; i < got.length; i++) {
            double want = kind.reference(e.values()[i], i, n, opValues);
            double productError = (e.k() + 2) * 0x1p-24 * e.absSums()[i];
            // The product's error carried through, plus a few ulps of each float32 step, whose
            // values are bounded by those of the product, the operands and the result.
            double magnitude = Math.abs(want) + Math.abs(e.values()[i]) + 1e-3;
            for (double[] op : opValues) magnitude += Math.abs(op[op.length == got.length ? i : op.length == 1 ? 0 : i % n]);
            double tol = kind.slope() * productError + 0x1p-19 * magnitude;
            if (!(Math.abs(got[i] - want) <= tol)) {
                fail(kind + " " + a.shape() + " @ " + b.shape() + ": element " + i + " is " + got[i] + ", expected " + want + " (tolerance " + tol + ")");
            }
        }
    }

    private static double gelu(double x) { return 0.5 * x * (1 + erf(x / Math.sqrt(2))); }

    private static double geluTanh(double x) {
        return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    }

    private static double silu(double x) { return x / (1 + Math.exp(-x)); }

    /** erf to about 1e-16 (Abramowitz-Stegun 7.1.26 is too coarse): its Taylor series, or the continued fraction of erfc. */
    private static double erf(double x) {
        double ax = Math.abs(x);
        if (ax < 2.5) {
            double term = ax, sum = ax;
            for (int k = 1; k < 80; k++) {
                term *= -ax * ax / k;
                sum += term / (2 * k + 1);
            }
            return Math.signum(x) * 2 / Math.sqrt(Math.PI) * sum;
        }
        double f = 0;
        for (int k = 60; k >= 1; k--) f = k / 2.0 / (ax + f);
        double erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
        return Math.signum(x) * (1 - erfc);
    }
}
