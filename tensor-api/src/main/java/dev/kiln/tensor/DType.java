package dev.kiln.tensor;

/**
 * Element types. Float16 and bfloat16 are storage formats: kernels load them into
 * float32, compute, and round on store. Float64 is computed in double.
 */
public enum DType {
    BOOL("bool", 1, Category.BOOL),
    INT32("int32", 4, Category.INTEGER),
    INT64("int64", 8, Category.INTEGER),
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

    /** The type arithmetic runs in: float32 for the half formats, else the type itself. */
    public DType computeType() {
        return this == FLOAT16 || this == BFLOAT16 ? FLOAT32 : this;
    }

    /**
     * PyTorch's promotion of two tensor dtypes of equal priority. Float16 with
     * bfloat16 promotes to float32, as in PyTorch.
     */
    public static DType promote(DType a, DType b) {
        if (a == b) return a;
        if (a.category != b.category) return a.category.ordinal() > b.category.ordinal() ? a : b;
        if (a.category == Category.FLOATING && a.byteSize == 2 && b.byteSize == 2) return FLOAT32;
        return a.byteSize >= b.byteSize ? a : b;
    }

    /** Parses names as NumPy and PyTorch spell them ("float32", "f32", "int64", "bool"...). */
    public static DType of(String name) {
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "bool", "b1" -> BOOL;
            case "int32", "i4", "int" -> INT32;
            case "int64", "i8", "long" -> INT64;
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
