package dev.kiln.tensor;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy's {@code .npy} format: one array per file, as {@code numpy.save} writes and
 * {@code numpy.load} reads it.
 *
 * <p>Reading accepts format versions 1.0, 2.0 and 3.0, little- and big-endian data, and
 * C or Fortran order; the dtypes Kiln has are bool ({@code |b1}), int8, uint8, int16, uint16,
 * int32, uint32, int64, uint64, float16, float32 and float64. Any other dtype (complex,
 * object, structured...) raises a {@link KilnTypeException} naming the file's dtype descriptor. A Fortran-order
 * array is returned as a column-major view of the data read (as NumPy does), not copied.
 *
 * <p>Writing produces version 1.0 (2.0 only if the header outgrew 1.0's 64 KiB limit),
 * little-endian, in C order, or in Fortran order when the tensor is laid out column-major.
 * Bfloat16 has no NumPy dtype, so it is saved as float32 ({@code <f4}), which holds every
 * bfloat16 value exactly; it reads back as float32.
 *
 * <p>Only the array's bytes are consumed from a stream, so several arrays written one
 * after another to a stream can be read back one after another.
 */
public final class Npy {
    private Npy() {}

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    /** NumPy pads the header so the data starts at a multiple of this (cache-line and vector friendly). */
    private static final int ALIGNMENT = 64;
    private static final int CHUNK_BYTES = 1 << 16;
    private static final Pattern DESCR = Pattern.compile("([<>|=]?)([a-zA-Z])(\\d*)(\\[\\w+])?");

    // ================================================================ public API

    /** Reads the array in the {@code .npy} file at {@code path}. */
    public static Tensor load(Path path) throws IOException {
        try (InputStream in = Files.newInputStream(path)) {
            return read(in);
        }
    }

    /** Reads one {@code .npy} array from {@code in}, consuming exactly its bytes. */
    public static Tensor read(InputStream in) throws IOException {
        Header h = readHeader(in);
        Shape shape = h.shape;
        Storage storage = Storage.allocate(shape.numel() * h.dtype.byteSize());
        readData(in, h, storage.segment());
        Layout layout = h.fortranOrder ? columnMajor(shape) : Layout.contiguous(shape);
        return Tensor.fromStorage(h.dtype, layout, storage);
    }

    /** Writes {@code t} to {@code path} in {@code .npy} format, replacing any existing file. */
    public static void save(Tensor t, Path path) throws IOException {
        try (OutputStream out = Files.newOutputStream(path)) {
            write(t, out);
        }
    }

    /** Writes {@code t} to {@code out} in {@code .npy} format (the stream is left open). */
    public static void write(Tensor t, OutputStream out) throws IOException {
        Layout layout = t.layout();
        boolean fortran = !layout.isContiguous() && isColumnMajor(layout);
        out.write(encodeHeader(descr(t.dtype()), fortran, t.shape()));
        writeData(t, fortran, out);
    }

    // ================================================================ header

    private record Header(DType dtype, ByteOrder order, boolean fortranOrder, Shape shape) {}

    private static Header readHeader(InputStream in) throws IOException {
        byte[] magic = readExactly(in, 8, "the magic string and version");
        for (int i = 0; i < MAGIC.length; i++) {
            if (magic[i] != MAGIC[i]) {
                throw new KilnException("npy: not a .npy stream: it does not start with the magic string \\x93NUMPY");
            }
        }
        int major = magic[6] & 0xff, minor = magic[7] & 0xff;
        if (minor != 0 || major < 1 || major > 3) {
            throw new KilnException("npy: format version " + major + "." + minor
                    + " is not supported (Kiln reads 1.0, 2.0 and 3.0)");
        }
        int lengthBytes = major == 1 ? 2 : 4;
        byte[] len = readExactly(in, lengthBytes, "the header length");
        long headerLength = 0;
        for (int i = lengthBytes - 1; i >= 0; i--) headerLength = headerLength << 8 | (len[i] & 0xff);
        if (headerLength > Integer.MAX_VALUE - 16) {
            throw new KilnException("npy: header length " + headerLength + " is implausibly large");
        }
        // Version 3.0 only changed the header's encoding, to allow non-Latin-1 field names.
        Charset charset = major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1;
        String text = new String(readExactly(in, (int) headerLength, "the header"), charset);
        return parseHeader(text);
    }

    private static Header parseHeader(String text) {
        Map<String, Literal> dict = new HeaderParser(text).dictionary();
        for (String key : dict.keySet()) {
            if (!List.of("descr", "fortran_order", "shape").contains(key)) {
                throw new KilnException("npy: header has the unexpected key '" + key + "': " + text.strip());
            }
        }
        Literal descr = require(dict, "descr", text), fortran = require(dict, "fortran_order", text), shape = require(dict, "shape", text);
        if (!(fortran.value instanceof Boolean fortranOrder)) {
            throw new KilnException("npy: 'fortran_order' must be True or False, got " + fortran.source);
        }
        if (!(descr.value instanceof String d)) {
            throw new KilnTypeException("npy: dtype " + descr.source + " (structured) is not supported by Kiln");
        }
        Matcher m = DESCR.matcher(d);
        if (!m.matches()) throw new KilnTypeException("npy: dtype '" + d + "' is not a NumPy dtype Kiln understands");
        DType dtype = dtypeOf(m.group(2).charAt(0), m.group(3), m.group(4));
        if (dtype == null) {
            throw new KilnTypeException("npy: dtype '" + d + "' (" + numpyName(m.group(2).charAt(0), m.group(3), m.group(4))
                    + ") is not supported by Kiln");
        }
        ByteOrder order = switch (m.group(1)) {
            case ">" -> ByteOrder.BIG_ENDIAN;
            case "<" -> ByteOrder.LITTLE_ENDIAN;
            default -> ByteOrder.nativeOrder();
        };
        return new Header(dtype, order, fortranOrder, shapeOf(shape));
    }

    private static Literal require(Map<String, Literal> dict, String key, String text) {
        Literal v = dict.get(key);
        if (v == null) throw new KilnException("npy: header lacks the key '" + key + "': " + text.strip());
        return v;
    }

    private static Shape shapeOf(Literal shape) {
        if (!(shape.value instanceof List<?> items) || !shape.source.startsWith("(")) {
            throw new KilnException("npy: 'shape' must be a tuple of integers, got " + shape.source);
        }
        if (items.size() > Shape.MAX_RANK) {
            throw new KilnShapeException("npy: shape " + shape.source + " has rank " + items.size()
                    + ", above Kiln's maximum " + Shape.MAX_RANK);
        }
        int[] dims = new int[items.size()];
        for (int i = 0; i < dims.length; i++) {
            if (!(((Literal) items.get(i)).value instanceof Long n) || n < 0 || n > Integer.MAX_VALUE) {
                throw new KilnShapeException("npy: shape " + shape.source + ": dimension " + i
                        + " must be an integer in [0, " + Integer.MAX_VALUE + "]");
            }
            dims[i] = n.intValue();
        }
        try {
            return Shape.of(dims);
        } catch (ArithmeticException e) {
            throw new KilnShapeException("npy: shape " + shape.source + " has more than 2^63 elements");
        }
    }

    /** Kiln's dtype for a NumPy kind and item size, or null if Kiln has none. */
    private static DType dtypeOf(char kind, String size, String unit) {
        if (unit != null) return null;
        return switch (kind + size) {
            case "b1" -> DType.BOOL;
            case "i1" -> DType.INT8;
            case "u1" -> DType.UINT8;
            case "i2" -> DType.INT16;
            case "u2" -> DType.UINT16;
            case "i4" -> DType.INT32;
            case "u4" -> DType.UINT32;
            case "i8" -> DType.INT64;
            case "u8" -> DType.UINT64;
            case "f2" -> DType.FLOAT16;
            case "f4" -> DType.FLOAT32;
            case "f8" -> DType.FLOAT64;
            default -> null;
        };
    }

    /** NumPy's name for a dtype descriptor, as {@code dtype.name} gives it ("u1" is uint8, "c16" is complex128). */
    private static String numpyName(char kind, String size, String unit) {
        // A 'U' item size counts UCS-4 characters, every other kind's counts bytes.
        String bits = size.isEmpty() ? "" : Long.toString(Long.parseLong(size) * (kind == 'U' ? 32 : 8));
        String base = switch (kind) {
            case 'b' -> "bool";
            case 'i' -> "int";
            case 'u' -> "uint";
            case 'f' -> "float";
            case 'c' -> "complex";
            case 'O' -> "object";
            case 'S', 'a' -> "bytes";
            case 'U' -> "str";
            case 'V' -> "void";
            case 'M' -> "datetime64";
            case 'm' -> "timedelta64";
            default -> "unknown kind '" + kind + "'";
        };
        return switch (kind) {
            case 'b', 'O' -> base;
            case 'M', 'm' -> unit == null ? base : base + unit;
            default -> base + bits;
        };
    }

    private static String descr(DType t) {
        return switch (t) {
            case BOOL -> "|b1";
            case INT8 -> "|i1";
            case UINT8 -> "|u1";
            case INT16 -> "<i2";
            case UINT16 -> "<u2";
            case INT32 -> "<i4";
            case UINT32 -> "<u4";
            case INT64 -> "<i8";
            case UINT64 -> "<u8";
            case FLOAT16 -> "<f2";
            // bfloat16 has no NumPy dtype; it is written widened to float32 (see the class comment).
            case FLOAT32, BFLOAT16 -> "<f4";
            case FLOAT64 -> "<f8";
        };
    }

    /** Magic, version, header length and the header dict, padded with spaces to end at a multiple of 64. */
    private static byte[] encodeHeader(String descr, boolean fortran, Shape shape) {
        StringBuilder dict = new StringBuilder("{'descr': '").append(descr).append("', 'fortran_order': ")
                .append(fortran ? "True" : "False").append(", 'shape': (");
        int[] dims = shape.dims();
        for (int i = 0; i < dims.length; i++) dict.append(i > 0 ? ", " : "").append(dims[i]);
        dict.append(dims.length == 1 ? ",), }" : "), }");
        int version = 1;
        int prefix = MAGIC.length + 4;
        int padded = Math.ceilDiv(prefix + dict.length() + 1, ALIGNMENT) * ALIGNMENT;
        if (padded - prefix > 0xffff) {
            // Version 2.0 differs only in a 4-byte header length.
            version = 2;
            prefix = MAGIC.length + 6;
            padded = Math.ceilDiv(prefix + dict.length() + 1, ALIGNMENT) * ALIGNMENT;
        }
        int headerLength = padded - prefix;
        dict.append(" ".repeat(headerLength - dict.length() - 1)).append('\n');
        byte[] out = new byte[padded];
        System.arraycopy(MAGIC, 0, out, 0, MAGIC.length);
        out[6] = (byte) version;
        out[7] = 0;
        for (int i = 0; i < prefix - 8; i++) out[8 + i] = (byte) (headerLength >>> (8 * i));
        byte[] text = dict.toString().getBytes(StandardCharsets.ISO_8859_1);
        System.arraycopy(text, 0, out, prefix, text.length);
        return out;
    }

    // ================================================================ data

    private static void readData(InputStream in, Header h, MemorySegment dst) throws IOException {
        int size = h.dtype.byteSize();
        ValueLayout file = bits(size).withOrder(h.order), memory = bits(size);
        long total = h.shape.numel() * size;
        byte[] buf = new byte[(int) Math.min(CHUNK_BYTES, Math.max(total, 1))];
        MemorySegment chunk = MemorySegment.ofArray(buf);
        for (long done = 0; done < total; ) {
            int n = (int) Math.min(buf.length, total - done);
            int got = in.readNBytes(buf, 0, n);
            if (got < n) {
                throw new KilnException("npy: the data ends after " + (done + got) + " of " + total + " bytes for "
                        + h.dtype + " shape " + h.shape);
            }
            MemorySegment.copy(chunk, file, 0, dst, memory, done, n / size);
            done += n;
        }
        if (h.dtype == DType.BOOL) {
            // Kernels may rely on bools being exactly 0 or 1.
            for (long i = 0; i < total; i++) if (dst.get(ValueLayout.JAVA_BYTE, i) != 0) dst.set(ValueLayout.JAVA_BYTE, i, (byte) 1);
        }
    }

    private static void writeData(Tensor t, boolean fortran, OutputStream out) throws IOException {
        Layout layout = t.layout();
        DataSink sink = new DataSink(t.dtype(), t.storage().segment(), out);
        int[] dims = layout.shape().dims();
        long numel = layout.shape().numel();
        if (numel == 0) return;
        if (fortran || layout.isContiguous()) {
            sink.run(layout.offset(), 1, numel);
        } else {
            // C order over rows of the last dimension, with an odometer over the others.
            int rank = dims.length;
            long[] strides = layout.strides();
            int[] index = new int[rank - 1];
            long rowOffset = layout.offset();
            for (long row = 0, rows = numel / dims[rank - 1]; row < rows; row++) {
                sink.run(rowOffset, strides[rank - 1], dims[rank - 1]);
                for (int d = rank - 2; d >= 0; d--) {
                    rowOffset += strides[d];
                    if (++index[d] < dims[d]) break;
                    rowOffset -= (long) dims[d] * strides[d];
                    index[d] = 0;
                }
            }
        }
        sink.flush();
    }

    /** Buffers little-endian file bytes for runs of strided elements. */
    private static final class DataSink {
        private final DType dtype;
        private final MemorySegment src;
        private final OutputStream out;
        private final int size, fileSize;
        private final byte[] buf = new byte[CHUNK_BYTES];
        private final MemorySegment chunk = MemorySegment.ofArray(buf);
        private int used;

        DataSink(DType dtype, MemorySegment src, OutputStream out) {
            this.dtype = dtype;
            this.src = src;
            this.out = out;
            this.size = dtype.byteSize();
            this.fileSize = dtype == DType.BFLOAT16 ? 4 : size;
        }

        /** Appends {@code count} elements starting at element {@code offset}, {@code stride} elements apart. */
        void run(long offset, long stride, long count) throws IOException {
            while (count > 0) {
                if (used == buf.length) flush();
                int n = (int) Math.min(count, (buf.length - used) / fileSize);
                encode(offset, stride, n);
                used += n * fileSize;
                offset += n * stride;
                count -= n;
            }
        }

        private void encode(long offset, long stride, int n) {
            if (dtype == DType.BFLOAT16) {
                // bfloat16 is the top half of a float32: widening is exact.
                ValueLayout.OfInt le = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < n; i++) {
                    short b = src.get(ValueLayout.JAVA_SHORT_UNALIGNED, (offset + i * stride) * 2);
                    chunk.set(le, used + 4L * i, (b & 0xffff) << 16);
                }
            } else if (stride == 1) {
                MemorySegment.copy(src, bits(size), offset * size, chunk, bits(size).withOrder(ByteOrder.LITTLE_ENDIAN), used, n);
            } else {
                for (int i = 0; i < n; i++) {
                    MemorySegment.copy(src, bits(size), (offset + i * stride) * size,
                            chunk, bits(size).withOrder(ByteOrder.LITTLE_ENDIAN), used + (long) i * size, 1);
                }
            }
        }

        void flush() throws IOException {
            out.write(buf, 0, used);
            used = 0;
        }
    }

    /** An unaligned integer layout of {@code size} bytes: copying raw bits keeps NaN payloads intact. */
    private static ValueLayout bits(int size) {
        return switch (size) {
            case 1 -> ValueLayout.JAVA_BYTE;
            case 2 -> ValueLayout.JAVA_SHORT_UNALIGNED;
            case 4 -> ValueLayout.JAVA_INT_UNALIGNED;
            case 8 -> ValueLayout.JAVA_LONG_UNALIGNED;
            default -> throw new IllegalArgumentException("element size " + size);
        };
    }

    private static Layout columnMajor(Shape shape) {
        int[] d = shape.dims();
        long[] strides = new long[d.length];
        long acc = 1;
        for (int i = 0; i < d.length; i++) {
            strides[i] = acc;
            acc *= Math.max(d[i], 1);
        }
        return new Layout(shape, strides, 0);
    }

    /** True when the elements are dense in column-major order (size-1 dimensions may have any stride). */
    private static boolean isColumnMajor(Layout l) {
        int[] d = l.shape().dims();
        long expected = 1;
        for (int i = 0; i < d.length; i++) {
            if (d[i] != 1 && l.strides()[i] != expected) return false;
            expected *= d[i];
        }
        return true;
    }

    private static byte[] readExactly(InputStream in, int n, String what) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length < n) throw new KilnException("npy: the stream ends inside " + what + " (" + b.length + " of " + n + " bytes)");
        return b;
    }

    // ================================================================ header literal parser

    /** A parsed Python literal with its source text (for messages). */
    private record Literal(Object value, String source) {}

    /**
     * The subset of Python literal syntax {@code numpy.save} headers use: a dict of
     * strings, booleans, integers and tuples (lists and nested tuples for structured
     * dtypes, which are parsed only to be rejected with their descriptor).
     */
    private static final class HeaderParser {
        private final String s;
        private int pos;

        HeaderParser(String s) { this.s = s; }

        Map<String, Literal> dictionary() {
            skipSpace();
            if (peek() != '{') throw error("expected a dict");
            Literal dict = value();
            skipSpace();
            if (pos != s.length()) throw error("unexpected text after the dict");
            @SuppressWarnings("unchecked")
            Map<String, Literal> map = (Map<String, Literal>) dict.value;
            return map;
        }

        private Literal value() {
            skipSpace();
            int start = pos;
            char c = peek();
            Object v;
            if (c == '{') v = dict();
            else if (c == '(' || c == '[') v = sequence(c == '(' ? ')' : ']');
            else if (c == '\'' || c == '"') v = string();
            else if (c == '-' || c == '+' || Character.isDigit(c)) v = integer();
            else if (Character.isLetter(c)) v = name();
            else throw error("unexpected character '" + c + "'");
            return new Literal(v, s.substring(start, pos));
        }

        private Map<String, Literal> dict() {
            pos++;
            Map<String, Literal> map = new LinkedHashMap<>();
            while (true) {
                skipSpace();
                if (peek() == '}') { pos++; return map; }
                Literal key = value();
                if (!(key.value instanceof String k)) throw error("dict keys must be strings, got " + key.source);
                skipSpace();
                expect(':');
                if (map.put(k, value()) != null) throw error("the key '" + k + "' appears twice");
                if (!separator('}')) { pos++; return map; }
            }
        }

        private List<Literal> sequence(char close) {
            pos++;
            List<Literal> items = new ArrayList<>();
            while (true) {
                skipSpace();
                if (peek() == close) { pos++; return items; }
                items.add(value());
                if (!separator(close)) { pos++; return items; }
            }
        }

        /** Consumes a comma and returns true, or returns false at the closing bracket. */
        private boolean separator(char close) {
            skipSpace();
            if (peek() == ',') { pos++; return true; }
            if (peek() == close) return false;
            throw error("expected ',' or '" + close + "'");
        }

        private String string() {
            char quote = s.charAt(pos++);
            StringBuilder sb = new StringBuilder();
            for (char c = peek(); c != quote; c = peek()) {
                pos++;
                if (c == '\\') {
                    c = peek();
                    pos++;
                }
                sb.append(c);
            }
            pos++;
            return sb.toString();
        }

        private Long integer() {
            int start = pos;
            if (peek() == '-' || peek() == '+') pos++;
            while (Character.isDigit(peek())) pos++;
            String digits = s.substring(start, pos);
            if (peek() == 'L' || peek() == 'l') pos++; // Python 2 longs, in files from old NumPy versions
            try {
                return Long.parseLong(digits);
            } catch (NumberFormatException e) {
                throw error("invalid integer '" + digits + "'");
            }
        }

        private Object name() {
            int start = pos;
            while (Character.isLetterOrDigit(peek()) || peek() == '_') pos++;
            return switch (s.substring(start, pos)) {
                case "True" -> Boolean.TRUE;
                case "False" -> Boolean.FALSE;
                default -> throw error("unexpected name '" + s.substring(start, pos) + "'");
            };
        }

        private void expect(char c) {
            if (peek() != c) throw error("expected '" + c + "'");
            pos++;
        }

        private char peek() {
            if (pos >= s.length()) throw error("the header ends early");
            return s.charAt(pos);
        }

        private void skipSpace() {
            while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) pos++;
        }

        private KilnException error(String what) {
            return new KilnException("npy: malformed header at character " + pos + ": " + what + ": " + s.strip());
        }
    }
}
