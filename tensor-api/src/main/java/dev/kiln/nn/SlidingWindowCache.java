package dev.kiln.nn;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;

import java.util.Arrays;

/**
 * The key/value cache of a sliding-window attention layer: per sequence, a ring that
 * holds only the most recent keys and values, updated in place (the key of absolute
 * position {@code j} lives in slot {@code j % R}), so memory stays constant however long
 * a stream runs: no reallocation, no shifting copy.
 *
 * <p>Prefill chunks: a chunk of {@code c} tokens starting at position {@code p} writes its
 * keys first and then attends, and its first row still needs the keys back to position
 * {@code p - W + 1}. The ring is therefore sized {@code R = W + maxChunk - 1}: writing
 * positions {@code p .. p + c - 1} only overwrites positions at or before {@code p - W},
 * which no row of the chunk, nor any later one, can see. A chunk longer than
 * {@code maxChunk} is refused (split it, or run it through the paged path).
 *
 * <p>Not thread-safe: one engine step at a time updates a cache.
 */
public final class SlidingWindowCache {
    private final int window;
    private final int maxChunk;
    private final int ring;
    private final Tensor keyRing;
    private final Tensor valueRing;
    private final long[] length;

    /**
     * @param sequences how many sequences (ring rows) the cache serves
     * @param window    W: a query at position p sees positions {@code p - W + 1 .. p}
     * @param maxChunk  the most tokens one {@link #prefill} call may add
     */
    public SlidingWindowCache(int sequences, int window, int maxChunk, int kvHeads, int headDim, DType dtype) {
        if (sequences < 1 || window < 1 || maxChunk < 1 || kvHeads < 1 || headDim < 1) {
            throw new KilnException("SlidingWindowCache: sequences, window, maxChunk, kvHeads and headDim must be positive, got "
                    + sequences + ", " + window + ", " + maxChunk + ", " + kvHeads + ", " + headDim);
        }
        if (!dtype.isFloatingPoint()) throw new KilnException("SlidingWindowCache: dtype must be floating point, got " + dtype);
        this.window = window;
        this.maxChunk = maxChunk;
        this.ring = Math.addExact(window, maxChunk - 1);
        this.keyRing = Tensor.zeros(dtype, sequences, ring, kvHeads, headDim);
        this.valueRing = Tensor.zeros(dtype, sequences, ring, kvHeads, headDim);
        this.length = new long[sequences];
    }

    public int window() { return window; }
    public int maxChunk() { return maxChunk; }
    /** R, the slots per sequence: {@code window + maxChunk - 1}. */
    public int ringSize() { return ring; }
    /** The rings [B, R, Hkv, D], for inspection; they change in place. */
    public Tensor keyRing() { return keyRing; }
    public Tensor valueRing() { return valueRing; }
    /** Tokens written so far for {@code sequence}: the position of its next token. */
    public long length(int sequence) { return length[checkSequence("length", sequence)]; }

    /** Starts {@code sequence} afresh (its old slots become unreachable; nothing is copied). */
    public void reset(int sequence) { length[checkSequence("reset", sequence)] = 0; }

    /**
     * Appends the keys and values [c, Hkv, D] of {@code c <= maxChunk} new tokens of
     * {@code sequence}, then returns the attention [c, H, D] of their queries, row i at
     * position {@code length + i}.
     */
    public Tensor prefill(int sequence, Tensor query, Tensor key, Tensor value, double scale, double softcap) {
        String op = "SlidingWindowCache.prefill";
        checkSequence(op, sequence);
        int c = checkTokens(op, query, key, value);
        if (c > maxChunk) {
            throw new KilnShapeException(op + ": a chunk of " + c + " tokens exceeds maxChunk " + maxChunk
                    + " (the ring holds window + maxChunk - 1 = " + ring + " slots); split the chunk");
        }
        long start = length[sequence];
        long[] positions = new long[c], slots = new long[c];
        for (int i = 0; i < c; i++) {
            positions[i] = start + i;
            slots[i] = (long) sequence * ring + Math.floorMod(start + i, ring);
        }
        int[] rows = new int[c];
        Arrays.fill(rows, sequence);
        return appendAndAttend(query, key, value, rows, positions, slots, scale, softcap, sequence, c);
    }

    /** One new token for every sequence: query [B, H, D], key and value [B, Hkv, D]; returns [B, H, D]. */
    public Tensor decode(Tensor query, Tensor key, Tensor value, double scale, double softcap) {
        String op = "SlidingWindowCache.decode";
        int b = checkTokens(op, query, key, value);
        if (b != length.length) {
            throw new KilnShapeException(op + ": expected one token for each of the " + length.length + " sequences, got " + b
                    + " in query " + query.shape());
        }
        long[] positions = length.clone(), slots = new long[b];
        int[] rows = new int[b];
        for (int s = 0; s < b; s++) {
            rows[s] = s;
            slots[s] = (long) s * ring + Math.floorMod(positions[s], ring);
        }
        return appendAndAttend(query, key, value, rows, positions, slots, scale, softcap, -1, 1);
    }

    private Tensor appendAndAttend(Tensor query, Tensor key, Tensor value, int[] rows, long[] positions, long[] slots,
                                   double scale, double softcap, int sequence, int advance) {
        // The ring as a paged cache of one block of R slots per sequence: slot s*R + j % R.
        Serving.reshapeAndCache(key, value, keyRing, valueRing, Tensor.of(slots, slots.length));
        Tensor out = Serving.slidingWindowAttention(query, keyRing, valueRing, Tensor.of(Arrays.stream(rows).asLongStream().toArray(),
                rows.length), Tensor.of(positions, positions.length), window, scale, softcap);
        if (sequence >= 0) length[sequence] += advance;
        else for (int s = 0; s < length.length; s++) length[s]++;
        return out;
    }

    /** Checks shapes before anything is written, so bad input leaves the rings as they were; returns the token count. */
    private int checkTokens(String op, Tensor query, Tensor key, Tensor value) {
        int kvHeads = keyRing.size(2), headDim = keyRing.size(3);
        if (key.rank() != 3 || key.size(1) != kvHeads || key.size(2) != headDim || !key.shape().equals(value.shape())) {
            throw new KilnShapeException(op + ": key and value must both be [tokens, " + kvHeads + ", " + headDim + "], got "
                    + key.shape() + " and " + value.shape());
        }
        if (query.rank() != 3 || query.size(0) != key.size(0) || query.size(2) != headDim || query.size(1) % kvHeads != 0) {
            throw new KilnShapeException(op + ": query must be [" + key.size(0) + ", H, " + headDim + "] with H a multiple of "
                    + kvHeads + ", got " + query.shape());
        }
        if (key.dtype() != keyRing.dtype() || value.dtype() != keyRing.dtype()) {
            throw new dev.kiln.tensor.KilnTypeException(op + ": key and value must be " + keyRing.dtype() + " like the cache, got "
                    + key.dtype() + " and " + value.dtype());
        }
        return key.size(0);
    }

    private int checkSequence(String op, int sequence) {
        if (sequence < 0 || sequence >= length.length) {
            throw new KilnShapeException(op + ": sequence " + sequence + " is out of range for a cache of " + length.length + " sequences");
        }
        return sequence;
    }
}
