package dev.kiln.nn;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;


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
 * <p>{@link #prefill} and {@link #decode} each prepare a {@link Step} (where the tokens go, as
 * tensors), {@link #attend} with it and {@link #commit} it. Compiled code takes the three
 * steps apart: it prepares a step on the host, passes the step's tensors to the compiled
 * function, which calls {@link #attend} (one graph, the ring writes in place included), and
 * commits after.
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
    /** Counts the changes of {@link #length}, so that a step prepared before one is refused. */
    private long version;

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
    public void reset(int sequence) {
        length[checkSequence("reset", sequence)] = 0;
        version++;
    }

    /**
     * Appends the keys and values [c, Hkv, D] of {@code c <= maxChunk} new tokens of
     * {@code sequence}, then returns the attention [c, H, D] of their queries, row i at
     * position {@code length + i}: {@link #preparePrefill}, {@link #attend}, {@link #commit}.
     */
    public Tensor prefill(int sequence, Tensor query, Tensor key, Tensor value, double scale, double softcap) {
        String op = "SlidingWindowCache.prefill";
        checkSequence(op, sequence);
        Step step = prefillStep(op, sequence, checkTokens(op, query, key, value));
        Tensor out = attend(step, query, key, value, scale, softcap);
        commit(step);
        return out;
    }

    /**
     * One new token for every sequence: query [B, H, D], key and value [B, Hkv, D]; returns
     * [B, H, D]: {@link #prepareDecode}, {@link #attend}, {@link #commit}.
     */
    public Tensor decode(Tensor query, Tensor key, Tensor value, double scale, double softcap) {
        String op = "SlidingWindowCache.decode";
        int b = checkTokens(op, query, key, value);
        if (b != length.length) {
            throw new KilnShapeException(op + ": expected one token for each of the " + length.length + " sequences, got " + b
                    + " in query " + query.shape());
        }
        Step step = prepareDecode();
        Tensor out = attend(step, query, key, value, scale, softcap);
        commit(step);
        return out;
    }

    /**
     * Where a step's tokens go and what they see, as tensors (int64 [tokens]): each token's ring
     * slot ({@code sequence * R + position % R}), its sequence and its position. A compiled step
     * takes them as arguments, so it is one graph that {@link #attend} runs whatever the lengths;
     * {@link #commit} then advances the lengths. {@code sequence} is -1 for a decode step of every
     * sequence; {@code version} is the cache's when the step was made.
     */
    public record Step(Tensor slots, Tensor rows, Tensor positions, int sequence, int tokens, long version) {}

    /** The step that appends {@code tokens <= maxChunk} tokens to {@code sequence}. */
    public Step preparePrefill(int sequence, int tokens) {
        String op = "SlidingWindowCache.preparePrefill";
        checkSequence(op, sequence);
        return prefillStep(op, sequence, tokens);
    }

    private Step prefillStep(String op, int sequence, int tokens) {
        if (tokens < 0 || tokens > maxChunk) {
            throw new KilnShapeException(op + ": a chunk of " + tokens + " tokens exceeds maxChunk " + maxChunk
                    + " (the ring holds window + maxChunk - 1 = " + ring + " slots); split the chunk");
        }
        long start = length[sequence];
        long[] positions = new long[tokens], slots = new long[tokens], rows = new long[tokens];
        for (int i = 0; i < tokens; i++) {
            positions[i] = start + i;
            slots[i] = (long) sequence * ring + Math.floorMod(start + i, ring);
            rows[i] = sequence;
        }
        return new Step(Tensor.of(slots, tokens), Tensor.of(rows, tokens), Tensor.of(positions, tokens), sequence, tokens, version);
    }

    /** The step that appends one token to every sequence. */
    public Step prepareDecode() {
        int b = length.length;
        long[] positions = length.clone(), slots = new long[b], rows = new long[b];
        for (int s = 0; s < b; s++) {
            rows[s] = s;
            slots[s] = (long) s * ring + Math.floorMod(positions[s], ring);
        }
        return new Step(Tensor.of(slots, b), Tensor.of(rows, b), Tensor.of(positions, b), -1, 1, version);
    }

    /** {@link #attend(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, double, double)} with the step's tensors. */
    public Tensor attend(Step step, Tensor query, Tensor key, Tensor value, double scale, double softcap) {
        return attend(step.slots(), step.rows(), step.positions(), query, key, value, scale, softcap);
    }

    /**
     * Writes the keys and values [tokens, Hkv, D] of a step (its {@code slots}, {@code rows} and
     * {@code positions}, see {@link Step}) into the rings, in place, then returns the attention
     * [tokens, H, D] of its queries. Leaves the lengths alone: {@link #commit} advances them.
     * Traced with the step's tensors as arguments, it is one graph.
     */
    public Tensor attend(Tensor slots, Tensor rows, Tensor positions, Tensor query, Tensor key, Tensor value, double scale,
                         double softcap) {
        // The ring as a paged cache of one block of R slots per sequence: slot s*R + j % R.
        Serving.reshapeAndCache(key, value, keyRing, valueRing, slots);
        return Serving.slidingWindowAttention(query, keyRing, valueRing, rows, positions, window, scale, softcap);
    }

    /** Advances the lengths past a step {@link #attend} ran; a step prepared before another commit or reset is refused. */
    public void commit(Step step) {
        if (step.version() != version) {
            throw new KilnException("SlidingWindowCache.commit: the step was prepared before the cache last changed (a commit or"
                    + " reset since); prepare it again");
        }
        if (step.sequence() >= 0) length[step.sequence()] += step.tokens();
        else for (int s = 0; s < length.length; s++) length[s]++;
        version++;
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
