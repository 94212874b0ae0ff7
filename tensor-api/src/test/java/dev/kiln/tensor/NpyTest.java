package dev.kiln.tensor;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * .npy reading and writing. Tensors are built and read through storage directly
 * (tensor-api has no kernel backend on its test class path). Reading is checked
 * against headers built byte by byte here, not only against Npy's own writer.
 */
class NpyTest {

    private static final DType[] NUMPY_TYPES = {DType.BOOL, DType.INT8, DType.UINT8, DType.INT16, DType.UINT16, DType.INT32, DType.UINT32,
            DType.INT64, DType.UINT64, DType.FLOAT16, DType.FLOAT32, DType.FLOAT64};

    // ================================================================ round trips

    /** How the tensor handed to {@code write} is laid out. */
    enum View { CONTIGUOUS, COLUMN_MAJOR, REVERSED_LAST, STRIDED, OFFSET }

    @Property(tries = 150)
    void writeThenReadGivesTheSameValuesShapeAndDtype(@ForAll("numpyTypes") DType dtype, @ForAll("shapes") int[] shape,
                                                      @ForAll View view, @ForAll long seed) throws IOException {
        double[] values = randomValues(dtype, Shape.of(shape).numel(), seed);
        Tensor t = build(values, dtype, view, shape);
        Tensor back = roundTrip(t);
        assertEquals(dtype, back.dtype());
        assertEquals(Shape.of(shape), back.shape());
        assertArrayEquals(values, valuesOf(back));
    }

    @Provide
    Arbitrary<DType> numpyTypes() { return Arbitraries.of(NUMPY_TYPES); }

    @Provide
    Arbitrary<int[]> shapes() {
        Arbitrary<Integer> dim = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(1, Arbitraries.just(0)),
                net.jqwik.api.Tuple.of(3, Arbitraries.just(1)),
                net.jqwik.api.Tuple.of(10, Arbitraries.integers().between(2, 5)));
        return dim.array(int[].class).ofMaxSize(4);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = "BFLOAT16", mode = EnumSource.Mode.EXCLUDE)
    void everyDtypeRoundTripsInEveryShapeKind(DType dtype) throws IOException {
        for (int[] shape : new int[][] {{}, {0}, {3, 0, 2}, {7}, {1, 1}, {2, 3, 4}, {1, 2, 1, 3, 1, 2, 1, 2}}) {
            double[] values = randomValues(dtype, Shape.of(shape).numel(), 42);
            Tensor back = roundTrip(build(values, dtype, View.CONTIGUOUS, shape));
            assertEquals(dtype, back.dtype());
            assertEquals(Shape.of(shape), back.shape(), Arrays.toString(shape));
            assertArrayEquals(values, valuesOf(back), Arrays.toString(shape));
        }
    }

    @Property(tries = 20)
    void zeroDimensionalTensorsOfEveryDtypeRoundTrip(@ForAll("numpyTypes") DType dtype, @ForAll @IntRange(min = -100, max = 100) int v)
            throws IOException {
        double value = randomValues(dtype, 1, v)[0];
        Tensor back = roundTrip(build(new double[] {value}, dtype, View.CONTIGUOUS));
        assertEquals(Shape.SCALAR, back.shape());
        assertEquals(value, back.getDouble(0));
    }

    @Test
    void largeTensorsCrossTheWriteBufferBoundary() throws IOException {
        double[] values = randomValues(DType.FLOAT64, 50_000, 7);
        Tensor t = build(values, DType.FLOAT64, View.REVERSED_LAST, 100, 500);
        assertArrayEquals(values, valuesOf(roundTrip(t)));
        Tensor c = build(values, DType.FLOAT64, View.CONTIGUOUS, 50_000);
        assertArrayEquals(values, valuesOf(roundTrip(c)));
    }

    @Test
    void nonFiniteFloatsAndNanPayloadsSurviveBitForBit() throws IOException {
        int[] bits = {0x7fc00001, 0xffc12345, Float.floatToRawIntBits(Float.POSITIVE_INFINITY),
                Float.floatToRawIntBits(-0.0f), 1 /* smallest subnormal */};
        Tensor t = Tensor.empty(DType.FLOAT32, Shape.of(bits.length));
        for (int i = 0; i < bits.length; i++) t.storage().segment().setAtIndex(ValueLayout.JAVA_INT, i, bits[i]);
        Tensor back = roundTrip(t);
        for (int i = 0; i < bits.length; i++) {
            assertEquals(bits[i], back.storage().segment().getAtIndex(ValueLayout.JAVA_INT, i), "element " + i);
        }
    }

    @Test
    void bfloat16IsSavedAsFloat32Exactly() throws IOException {
        double[] values = {1.0, -2.5, 3.140625, 1e30, Double.NaN, Double.NEGATIVE_INFINITY, 0.0};
        Tensor t = build(values, DType.BFLOAT16, View.CONTIGUOUS, values.length);
        byte[] file = toBytes(t);
        assertTrue(headerText(file).startsWith("{'descr': '<f4',"), headerText(file));
        Tensor back = Npy.read(new ByteArrayInputStream(file));
        assertEquals(DType.FLOAT32, back.dtype());
        assertArrayEquals(valuesOf(t), valuesOf(back));
    }

    @Test
    void columnMajorTensorsAreWrittenInFortranOrderAndReadBackAsColumnMajorViews() throws IOException {
        double[] values = randomValues(DType.FLOAT32, 24, 3);
        Tensor t = build(values, DType.FLOAT32, View.COLUMN_MAJOR, 2, 3, 4);
        byte[] file = toBytes(t);
        assertTrue(headerText(file).contains("'fortran_order': True"), headerText(file));
        Tensor back = Npy.read(new ByteArrayInputStream(file));
        assertArrayEquals(new long[] {1, 2, 6}, back.strides());
        assertArrayEquals(values, valuesOf(back));
    }

    @Test
    void stridedViewsAreWrittenInCOrder() throws IOException {
        Tensor t = build(randomValues(DType.INT32, 12, 5), DType.INT32, View.STRIDED, 3, 4);
        byte[] file = toBytes(t);
        assertTrue(headerText(file).contains("'fortran_order': False"));
        Tensor back = Npy.read(new ByteArrayInputStream(file));
        assertTrue(back.isContiguous());
        assertArrayEquals(valuesOf(t), valuesOf(back));
    }

    @Test
    void arraysWrittenOneAfterAnotherReadBackInTurn() throws IOException {
        Tensor a = Tensor.of(new int[] {1, 2, 3}, 3);
        Tensor b = Tensor.of(new double[] {0.5, -1}, 2, 1);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Npy.write(a, out);
        Npy.write(b, out);
        ByteArrayInputStream in = new ByteArrayInputStream(out.toByteArray());
        assertArrayEquals(new double[] {1, 2, 3}, valuesOf(Npy.read(in)));
        Tensor b2 = Npy.read(in);
        assertEquals(Shape.of(2, 1), b2.shape());
        assertArrayEquals(new double[] {0.5, -1}, valuesOf(b2));
        assertEquals(-1, in.read());
    }

    @Test
    void filesRoundTripThroughNpyAndTensorConveniences(@TempDir Path dir) throws IOException {
        Tensor t = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Path p = dir.resolve("t.npy");
        t.save(p);
        assertArrayEquals(valuesOf(t), valuesOf(Tensor.load(p)));
        Npy.save(Tensor.of(new long[] {9}, new int[0]), p);
        Tensor s = Npy.load(p);
        assertEquals(Shape.SCALAR, s.shape());
        assertEquals(DType.INT64, s.dtype());
        assertEquals(9, s.getDouble(0));
    }

    // ================================================================ exact bytes written

    @Test
    void headerMatchesNumpysByteForByte() throws IOException {
        // np.save of np.zeros((2, 3), np.float32): a 118-byte header, data at byte 128.
        byte[] file = toBytes(Tensor.of(new float[6], 2, 3));
        assertEquals(128 + 24, file.length);
        assertArrayEquals(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 118, 0}, Arrays.copyOf(file, 10));
        String header = new String(file, 10, 118, StandardCharsets.ISO_8859_1);
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        assertEquals(dict + " ".repeat(118 - dict.length() - 1) + "\n", header);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
            "BOOL; 4; {'descr': '|b1', 'fortran_order': False, 'shape': (4,), }",
            "INT32; 0; {'descr': '<i4', 'fortran_order': False, 'shape': (), }",
            "INT64; 2; {'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
            "FLOAT16; 1; {'descr': '<f2', 'fortran_order': False, 'shape': (1,), }",
            "FLOAT64; 3; {'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"})
    void headersNameTheNumpyDtypeAndShape(DType dtype, int length, String dict) throws IOException {
        int[] shape = length == 0 ? new int[0] : new int[] {length};
        byte[] file = toBytes(build(new double[Math.max(length, 1)], dtype, View.CONTIGUOUS, shape));
        assertEquals(dict, headerText(file).strip());
        int dataStart = 10 + (file[8] & 0xff | (file[9] & 0xff) << 8);
        assertEquals(0, dataStart % 64);
        assertEquals(dataStart + (long) Math.max(length, 1) * dtype.byteSize(), file.length);
    }

    @Test
    void dataIsWrittenLittleEndian() throws IOException {
        byte[] file = toBytes(Tensor.of(new int[] {0x01020304}, 1));
        assertArrayEquals(new byte[] {4, 3, 2, 1}, Arrays.copyOfRange(file, file.length - 4, file.length));
    }

    // ================================================================ reading hand-built files

    @Test
    void readsVersion2Headers() throws IOException {
        byte[] data = bytes(ByteOrder.LITTLE_ENDIAN, b -> { b.putFloat(1.5f); b.putFloat(-2f); b.putFloat(8f); });
        Tensor t = Npy.read(stream(npy(2, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 64, data)));
        assertEquals(DType.FLOAT32, t.dtype());
        assertArrayEquals(new double[] {1.5, -2, 8}, valuesOf(t));
    }

    @Test
    void readsVersion3HeadersInUtf8() throws IOException {
        byte[] data = bytes(ByteOrder.LITTLE_ENDIAN, b -> b.putLong(-7));
        Tensor t = Npy.read(stream(npy(3, 0, "{\"descr\": \"<i8\", \"fortran_order\": False, \"shape\": (1, 1)}", 64, data)));
        assertEquals(DType.INT64, t.dtype());
        assertEquals(Shape.of(1, 1), t.shape());
        assertEquals(-7, t.getDouble(0));
    }

    @Test
    void readsBigEndianData() throws IOException {
        assertArrayEquals(new double[] {1.5, -3.25}, valuesOf(Npy.read(stream(npy(1, 0,
                "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", 64,
                bytes(ByteOrder.BIG_ENDIAN, b -> { b.putDouble(1.5); b.putDouble(-3.25); }))))));
        assertArrayEquals(new double[] {1.5, 65504}, valuesOf(Npy.read(stream(npy(1, 0,
                "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 64,
                bytes(ByteOrder.BIG_ENDIAN, b -> { b.putFloat(1.5f); b.putFloat(65504f); }))))));
        assertArrayEquals(new double[] {0x01020304, -2}, valuesOf(Npy.read(stream(npy(1, 0,
                "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", 64,
                bytes(ByteOrder.BIG_ENDIAN, b -> { b.putInt(0x01020304); b.putInt(-2); }))))));
        assertArrayEquals(new double[] {1L << 40, -5}, valuesOf(Npy.read(stream(npy(1, 0,
                "{'descr': '>i8', 'fortran_order': False, 'shape': (2,), }", 64,
                bytes(ByteOrder.BIG_ENDIAN, b -> { b.putLong(1L << 40); b.putLong(-5); }))))));
        Tensor u64 = Npy.read(stream(npy(1, 0, "{'descr': '>u8', 'fortran_order': False, 'shape': (2,), }", 64,
                bytes(ByteOrder.BIG_ENDIAN, b -> { b.putLong(-1L); b.putLong(7); }))));
        assertEquals(DType.UINT64, u64.dtype());
        assertEquals(-1L, u64.storage().segment().getAtIndex(ValueLayout.JAVA_LONG, 0), "2^64 - 1 keeps its bits");
        assertArrayEquals(new double[] {0x1p64, 7}, valuesOf(u64));
        assertArrayEquals(new double[] {-1, -2}, valuesOf(Npy.read(stream(npy(1, 0,
                "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }", 64,
                bytes(ByteOrder.BIG_ENDIAN, b -> { b.putShort((short) -1); b.putShort((short) -2); }))))));
        assertArrayEquals(new double[] {0xfffffffeL, 3}, valuesOf(Npy.read(stream(npy(1, 0,
                "{'descr': '>u4', 'fortran_order': False, 'shape': (2,), }", 64,
                bytes(ByteOrder.BIG_ENDIAN, b -> { b.putInt(-2); b.putInt(3); }))))));
        Tensor half = Npy.read(stream(npy(1, 0, "{'descr': '>f2', 'fortran_order': False, 'shape': (2,), }", 64,
                bytes(ByteOrder.BIG_ENDIAN, b -> { b.putShort((short) 0x3c00); b.putShort((short) 0xc500); }))));
        assertEquals(DType.FLOAT16, half.dtype());
        assertArrayEquals(new double[] {1.0, -5.0}, valuesOf(half));
    }

    @Test
    void readsFortranOrderAsColumnMajor() throws IOException {
        // [[1, 2, 3], [4, 5, 6]] stored column by column: 1 4 2 5 3 6.
        byte[] data = bytes(ByteOrder.LITTLE_ENDIAN, b -> { for (int v : new int[] {1, 4, 2, 5, 3, 6}) b.putInt(v); });
        Tensor t = Npy.read(stream(npy(1, 0, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", 64, data)));
        assertEquals(Shape.of(2, 3), t.shape());
        assertArrayEquals(new double[] {1, 2, 3, 4, 5, 6}, valuesOf(t));

        // A rank-3 big-endian Fortran array: element (i, j, k) is 100i + 10j + k, at i + 2j + 6k.
        byte[] data3 = bytes(ByteOrder.BIG_ENDIAN, b -> {
            for (int k = 0; k < 4; k++) for (int j = 0; j < 3; j++) for (int i = 0; i < 2; i++) b.putShort((short) Float.floatToFloat16(100 * i + 10 * j + k));
        });
        Tensor t3 = Npy.read(stream(npy(1, 0, "{'descr': '>f2', 'fortran_order': True, 'shape': (2, 3, 4), }", 64, data3)));
        double[] v = valuesOf(t3);
        for (int i = 0; i < 2; i++) for (int j = 0; j < 3; j++) for (int k = 0; k < 4; k++) {
            assertEquals(100 * i + 10 * j + k, v[i * 12 + j * 4 + k], "element " + i + "," + j + "," + k);
        }
    }

    @Test
    void acceptsHeaderVariantsOldNumpyVersionsWrote() throws IOException {
        // Keys in another order, Python 2 longs, 16-byte alignment, no trailing comma.
        byte[] data = bytes(ByteOrder.LITTLE_ENDIAN, b -> { b.putDouble(1); b.putDouble(2); });
        Tensor t = Npy.read(stream(npy(1, 0, "{'shape': (2L, 1L), 'fortran_order': False, 'descr': '<f8'}", 16, data)));
        assertEquals(Shape.of(2, 1), t.shape());
        assertArrayEquals(new double[] {1, 2}, valuesOf(t));
    }

    @Test
    void readsZeroDimensionalAndEmptyArrays() throws IOException {
        Tensor scalar = Npy.read(stream(npy(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 64,
                bytes(ByteOrder.LITTLE_ENDIAN, b -> b.putFloat(2.5f)))));
        assertEquals(Shape.SCALAR, scalar.shape());
        assertEquals(2.5, scalar.getDouble(0));
        Tensor empty = Npy.read(stream(npy(1, 0, "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 0), }", 64, new byte[0])));
        assertEquals(Shape.of(3, 0), empty.shape());
        assertEquals(0, empty.numel());
    }

    @Test
    void boolBytesAreNormalisedToZeroOrOne() throws IOException {
        Tensor t = Npy.read(stream(npy(1, 0, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", 64, new byte[] {0, 1, 2})));
        assertEquals(DType.BOOL, t.dtype());
        assertEquals(1, t.storage().segment().get(ValueLayout.JAVA_BYTE, 2));
        assertArrayEquals(new double[] {0, 1, 1}, valuesOf(t));
    }

    // ================================================================ errors

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
            "<c8; complex64", "<c16; complex128", "|O; object", "<f16; float128", "<U3; str96", "|S4; bytes32",
            "<M8[ns]; datetime64[ns]", "|V2; void16"})
    void unsupportedDtypesNameTheirDescriptor(String descr, String numpyName) {
        byte[] file = npy(1, 0, "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (1,), }", 64, new byte[16]);
        var e = assertThrows(KilnTypeException.class, () -> Npy.read(stream(file)));
        assertEquals("npy: dtype '" + descr + "' (" + numpyName + ") is not supported by Kiln", e.getMessage());
    }

    @Test
    void structuredDtypesAreRejectedWithTheirDescriptor() {
        String descr = "[('x', '<f4'), ('y', '<i4')]";
        byte[] file = npy(1, 0, "{'descr': " + descr + ", 'fortran_order': False, 'shape': (1,), }", 64, new byte[8]);
        var e = assertThrows(KilnTypeException.class, () -> Npy.read(stream(file)));
        assertEquals("npy: dtype " + descr + " (structured) is not supported by Kiln", e.getMessage());
    }

    @Test
    void malformedFilesGiveMessagesSayingWhatIsWrong() {
        String ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        assertMessage("npy: not a .npy stream: it does not start with the magic string \\x93NUMPY",
                "PK\3\4 a zip file".getBytes(StandardCharsets.ISO_8859_1));
        assertMessage("npy: format version 4.0 is not supported (Kiln reads 1.0, 2.0 and 3.0)", npy(4, 0, ok, 64, new byte[8]));
        assertMessage("npy: the data ends after 4 of 8 bytes for float32 shape [2]", npy(1, 0, ok, 64, new byte[4]));
        assertMessage("npy: the stream ends inside the header (20 of 118 bytes)", Arrays.copyOf(npy(1, 0, ok, 64, new byte[8]), 30));
        assertMessage("npy: header lacks the key 'shape': {'descr': '<f4', 'fortran_order': False}",
                npy(1, 0, "{'descr': '<f4', 'fortran_order': False}", 64, new byte[0]));
        assertMessage("npy: header has the unexpected key 'order': {'descr': '<f4', 'order': 'C', 'fortran_order': False, 'shape': ()}",
                npy(1, 0, "{'descr': '<f4', 'order': 'C', 'fortran_order': False, 'shape': ()}", 64, new byte[4]));
        assertMessage("npy: 'shape' must be a tuple of integers, got [2]",
                npy(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", 64, new byte[8]));
        assertMessage("npy: 'fortran_order' must be True or False, got 0",
                npy(1, 0, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", 64, new byte[8]));
        assertMessage("npy: shape (2, -1): dimension 1 must be an integer in [0, 2147483647]",
                npy(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}", 64, new byte[8]));
        assertMessage("npy: shape (1, 1, 1, 1, 1, 1, 1, 1, 1) has rank 9, above Kiln's maximum 8",
                npy(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1)}", 64, new byte[4]));
        assertMessage("npy: malformed header at character 9: expected ':': {'descr' '<f4'}",
                npy(1, 0, "{'descr' '<f4'}", 64, new byte[0]));
    }

    private static void assertMessage(String expected, byte[] file) {
        var e = assertThrows(KilnException.class, () -> Npy.read(stream(file)));
        assertEquals(expected, e.getMessage());
    }

    @Test
    void loadingAMissingFileIsAnIoError(@TempDir Path dir) {
        assertThrows(IOException.class, () -> Npy.load(dir.resolve("absent.npy")));
        assertFalse(Files.exists(dir.resolve("absent.npy")));
    }

    // ================================================================ helpers

    private static Tensor roundTrip(Tensor t) throws IOException {
        return Npy.read(new ByteArrayInputStream(toBytes(t)));
    }

    private static byte[] toBytes(Tensor t) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Npy.write(t, out);
        return out.toByteArray();
    }

    private static String headerText(byte[] file) {
        int len = file[8] & 0xff | (file[9] & 0xff) << 8;
        return new String(file, 10, len, StandardCharsets.ISO_8859_1);
    }

    private static ByteArrayInputStream stream(byte[] b) { return new ByteArrayInputStream(b); }

    /** A .npy file built by hand: magic, version, little-endian header length, the dict padded to {@code align}, data. */
    private static byte[] npy(int major, int minor, String dict, int align, byte[] data) {
        int lengthBytes = major == 1 ? 2 : 4;
        int prefix = 8 + lengthBytes;
        int total = (prefix + dict.length() + 1 + align - 1) / align * align;
        String header = dict + " ".repeat(total - prefix - dict.length() - 1) + "\n";
        byte[] text = header.getBytes(major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        ByteBuffer b = ByteBuffer.allocate(prefix + text.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) major).put((byte) minor);
        if (lengthBytes == 2) b.putShort((short) text.length);
        else b.putInt(text.length);
        return b.put(text).put(data).array();
    }

    private static byte[] bytes(ByteOrder order, java.util.function.Consumer<ByteBuffer> fill) {
        ByteBuffer b = ByteBuffer.allocate(1024).order(order);
        fill.accept(b);
        return Arrays.copyOf(b.array(), b.position());
    }

    /** Values exactly representable in {@code dtype}, including non-finite ones for floats. */
    private static double[] randomValues(DType dtype, long n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] v = new double[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) {
            double x = switch (dtype) {
                case BOOL -> r.nextInt(2);
                case INT8, UINT8, INT16, UINT16, INT32, UINT32 -> r.nextLong(Elements.minValue(dtype), Elements.maxValue(dtype) + 1);
                case INT64 -> r.nextLong(-(1L << 53), 1L << 53);
                case UINT64 -> r.nextLong(0, 1L << 53) * (r.nextBoolean() ? 1 : 2048);
                default -> r.nextInt(10) == 0 ? new double[] {Double.NaN, Double.POSITIVE_INFINITY, -0.0}[r.nextInt(3)]
                        : (r.nextDouble() - 0.5) * Math.pow(2, r.nextInt(-20, 20));
            };
            Storage s = Storage.allocate(8);
            Elements.write(dtype, s.segment(), 0, x);
            v[i] = Elements.read(dtype, s.segment(), 0);
        }
        return v;
    }

    /** A tensor holding {@code values} in row-major order, laid out as {@code view} says; gaps hold garbage. */
    private static Tensor build(double[] values, DType dtype, View view, int... shape) {
        Shape s = Shape.of(shape);
        int rank = shape.length;
        long[] strides = s.contiguousStrides();
        long offset = 0, extent = Math.max(s.numel(), 1);
        switch (rank == 0 ? View.OFFSET : view) {
            case COLUMN_MAJOR -> {
                long acc = 1;
                for (int i = 0; i < rank; i++) { strides[i] = acc; acc *= Math.max(shape[i], 1); }
            }
            case REVERSED_LAST -> {
                strides[rank - 1] = -1;
                offset = Math.max(shape[rank - 1] - 1, 0);
            }
            case STRIDED -> {
                for (int i = 0; i < rank; i++) strides[i] *= 2;
                extent *= 2;
            }
            case OFFSET -> {
                offset = 5;
                extent += 9;
            }
            case CONTIGUOUS -> { }
        }
        Storage storage = Storage.allocate(extent * dtype.byteSize());
        for (long i = 0; i < extent; i++) Elements.write(dtype, storage.segment(), i, 77);
        Tensor t = Tensor.fromStorage(dtype, new Layout(s, strides, offset), storage);
        for (int i = 0; i < values.length; i++) Elements.write(dtype, storage.segment(), t.elementOffset(i), values[i]);
        return t;
    }

    private static double[] valuesOf(Tensor t) {
        double[] v = new double[Math.toIntExact(t.numel())];
        for (int i = 0; i < v.length; i++) v[i] = t.getDouble(i);
        return v;
    }
}
