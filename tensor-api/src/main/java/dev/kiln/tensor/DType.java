package dev.kiln.tensor;

/**
 * Element types. Float16 and bfloat16 are storage formats: kernels load them into
 * float32, compute, and round on store. Float64 is computed in double. Integers and bool
 * compute in 64 bits and wrap to their width on store, as NumPy's and PyTorch's fixed-width
 * integers do; uint64 is held in a long's bits and divided, compared and converted unsigned.
 */
public enum DType {
    BOOL("bool", 1, Category.BOOL),
    INT8("int8", 1, Category.INTEGER),
    UINT8("uint8", 1, Category.INTEGER),
    INT16("int16", 2, Category.INTEGER),
    UINT16("uint16", 2, Category.INTEGER),
    INT32("int32", 4, Category.INTEGER),
    UINT32("uint32", 4, Category.INTEGER),
    INT64("int64", 8, Category.INTEGER),
    UINT64("uint64", 8, Category.INTEGER),
    FLOAT16("float16", 2, Category.FLOATING),
    BFLOAT16("bfloat16", 2, Category.FLOATING),
    FLOAT32("float32", 4, Category.FLOATING),
    FLOAT64("float64", 8, Category.FLOATING);

    /** Kinds ordered as PyTorch's promotion ranks them: bool < integer < floating. */
    public enum Category { BOOL, INTEGER, FLOATING }

    private final String displayName;
    private final int byteSize;
    private final Category category;

    DType(String displayName, int byteSize, Category category) {
        this.displayName = displayName;
        this.byteSize = byteSize;
        this.category = category;
    }

    public int byteSize() { return byteSize; }
    public Category category() { return category; }
    public boolean isFloatingPoint() { return category == Category.FLOATING; }
    public boolean isInteger() { return category == Category.INTEGER; }
    public boolean isBool() { return this == BOOL; }
    public boolean isUnsigned() { return this == UINT8 || this == UINT16 || this == UINT32 || this == UINT64; }

    /**
     * Whether a host value converts to this type without overflow, as PyTorch checks a fill
     * value: bool takes anything; an integer type a value within its range (before
     * truncation); a floating type an infinity, NaN, or a value within its largest finite
     * magnitude.
     */
    public boolean holds(double value) {
        return switch (this) {
            case BOOL, FLOAT64 -> true;
            case FLOAT16 -> !(Math.abs(value) > 65504) || Double.isInfinite(value);
            case BFLOAT16 -> !(Math.abs(value) > 0x1.fep127) || Double.isInfinite(value);
            case FLOAT32 -> !(Math.abs(value) > Float.MAX_VALUE) || Double.isInfinite(value);
            default -> {
                int bits = 8 * byteSize - (isUnsigned() ? 0 : 1);
                double lowest = isUnsigned() ? 0 : -Math.scalb(1.0, bits);
                // 2^bits is a double exactly; the largest value, 2^bits - 1, is not for 64 bits.
                yield value >= lowest && value < Math.scalb(1.0, bits) && (bits >= 53 || value <= Math.scalb(1.0, bits) - 1);
            }
        };
    }

    /** The type arithmetic runs in: float32 for the half formats, else the type itself. */
    public DType computeType() {
        return this == FLOAT16 || this == BFLOAT16 ? FLOAT32 : this;
    }

    /**
     * PyTorch's promotion of two tensor dtypes of equal priority. Float16 with
     * bfloat16 promotes to float32, as in PyTorch. A signed and an unsigned integer type
     * promote to the smallest signed type holding both (uint8 with int8 is int16, uint32
     * with int32 is int64); uint64 with a signed type has none, and is an error rather than
     * NumPy's float64, which would round large values silently.
     */
    public static DType promote(DType a, DType b) {
        if (a == b) return a;
        if (a.category != b.category) return a.category.ordinal() > b.category.ordinal() ? a : b;
        if (a.category == Category.FLOATING && a.byteSize == 2 && b.byteSize == 2) return FLOAT32;
        if (a.category == Category.INTEGER && a.isUnsigned() != b.isUnsigned()) {
            DType signed = a.isUnsigned() ? b : a, unsigned = a.isUnsigned() ? a : b;
            if (signed.byteSize > unsigned.byteSize) return signed;
            return switch (unsigned) {
                case UINT8 -> INT16;
                case UINT16 -> INT32;
                case UINT32 -> INT64;
                default -> throw new KilnTypeException("no integer type holds both " + a + " and " + b + "; cast one of them first");
            };
        }
        return a.byteSize >= b.byteSize ? a : b;
    }

    /** Parses names as NumPy and PyTorch spell them ("float32", "f32", "int64", "bool"...). */
    public static DType of(String name) {
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "bool", "b1" -> BOOL;
            case "int8", "i1" -> INT8;
            case "uint8", "u1" -> UINT8;
            case "int16", "i2", "short" -> INT16;
            case "uint16", "u2" -> UINT16;
            case "int32", "i4", "int" -> INT32;
            case "uint32", "u4" -> UINT32;
            case "int64", "i8", "long" -> INT64;
            case "uint64", "u8" -> UINT64;
            case "float16", "f2", "half" -> FLOAT16;
            case "bfloat16", "bf16" -> BFLOAT16;
            case "float32", "f4", "float" -> FLOAT32;
            case "float64", "f8", "double" -> FLOAT64;
            default -> throw new IllegalArgumentException("unknown dtype '" + name + "'");
        };
    }

    @Override
    public String toString() { return displayName; }
}
