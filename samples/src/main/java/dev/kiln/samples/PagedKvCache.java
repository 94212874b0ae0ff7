package dev.kiln.samples;

import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A paged KV cache in vLLM's layout: per layer, keys and values of shape
 * {@code [blocks, blockSize, kvHeads, headDim]}, a pool of blocks handed out to sequences as
 * they grow, and the step inputs ({@link Step}) that {@code Serving.reshapeAndCache} and
 * {@code Serving.pagedAttention} read: slot mapping, block tables, context lengths and query
 * start locations.
 *
 * <p>A step is {@link #prepare prepared} (blocks for its new tokens are taken from the pool
 * then, all or none), run by the model, which writes the new tokens' keys and values, and then
 * {@link #commit committed}, which advances the sequences. Block tables are always
 * {@code [sequences, maxBlocksPerSequence]}, so a compiled step keeps one input signature as
 * the contexts grow. Not thread-safe: one engine thread drives it.
 */
public final class PagedKvCache {

    private final int blockSize, maxBlocksPerSequence;
    private final List<Tensor> keys = new ArrayList<>(), values = new ArrayList<>();
    private final ArrayDeque<Integer> freeBlocks = new ArrayDeque<>();
    private int nextSequenceId;

    /** One sequence's place in the cache: its blocks in order and how many tokens it holds. */
    public static final class Sequence {
        private final PagedKvCache owner;
        private final int id;
        private final List<Integer> blocks = new ArrayList<>();
        private int length;
        private boolean freed;

        private Sequence(PagedKvCache owner, int id) {
            this.owner = owner;
            this.id = id;
        }

        public int id() { return id; }

        /** Tokens whose keys and values are in the cache. */
        public int length() { return length; }

        /** Forgets the tokens from {@code newLength} on (their blocks stay with the sequence for reuse). */
        public void truncate(int newLength) {
            if (newLength < 0 || newLength > length) {
                throw new KilnException("truncate: sequence " + id + " holds " + length + " tokens, cannot truncate it to " + newLength);
            }
            length = newLength;
        }

        @Override
        public String toString() { return "sequence " + id + " (" + length + " tokens in " + blocks.size() + " blocks)"; }
    }

    /**
     * A prepared step: for each sequence, how many new tokens it brings, and the model's inputs.
     * {@code tokens}, {@code positions} and {@code slots} are [T] (the sequences' new tokens one
     * after another), {@code blockTables} [S, maxBlocksPerSequence], {@code contextLens} [S]
     * (new tokens included), {@code queryStartLoc} [S + 1], {@code lastRows} [S] (each
     * sequence's last new token's row). All int32.
     */
    public record Step(List<Sequence> sequences, int[] newTokens, int[] lengthsBefore, Tensor tokens, Tensor positions, Tensor slots,
                       Tensor blockTables, Tensor contextLens, Tensor queryStartLoc, Tensor lastRows) {}

    /**
     * A cache for {@code layers} layers of {@code blocks} blocks of {@code blockSize} tokens each,
     * zero-filled; a sequence may hold up to {@code maxBlocksPerSequence} blocks.
     */
    public PagedKvCache(int layers, int blocks, int blockSize, int kvHeads, int headDim, int maxBlocksPerSequence) {
        if (layers < 1 || blocks < 1 || blockSize < 1 || kvHeads < 1 || headDim < 1 || maxBlocksPerSequence < 1) {
            throw new KilnException("PagedKvCache: every size must be positive, got layers " + layers + ", blocks " + blocks
                    + ", blockSize " + blockSize + ", kvHeads " + kvHeads + ", headDim " + headDim + ", maxBlocksPerSequence "
                    + maxBlocksPerSequence);
        }
        this.blockSize = blockSize;
        this.maxBlocksPerSequence = maxBlocksPerSequence;
        for (int l = 0; l < layers; l++) {
            keys.add(Tensor.zeros(blocks, blockSize, kvHeads, headDim));
            values.add(Tensor.zeros(blocks, blockSize, kvHeads, headDim));
        }
        for (int b = 0; b < blocks; b++) freeBlocks.add(b);
    }

    /** Layer {@code l}'s keys [blocks, blockSize, kvHeads, headDim]. */
    public List<Tensor> keys() { return List.copyOf(keys); }

    public List<Tensor> values() { return List.copyOf(values); }

    public int blockSize() { return blockSize; }

    /** The longest sequence the block tables can address. */
    public int maxSequenceLength() { return maxBlocksPerSequence * blockSize; }

    public int freeBlocks() { return freeBlocks.size(); }

    public Sequence newSequence() { return new Sequence(this, nextSequenceId++); }

    /** Returns the sequence's blocks to the pool; the sequence cannot be used again. */
    public void free(Sequence s) {
        checkUsable("free", s);
        freeBlocks.addAll(s.blocks);
        s.blocks.clear();
        s.length = 0;
        s.freed = true;
    }

    /**
     * The inputs of a step in which each of {@code sequences} brings {@code tokens.get(i)} (at
     * least one token). Takes the blocks the new tokens need from the pool, or, when the pool or a
     * sequence's block table cannot hold them, throws before taking any.
     */
    public Step prepare(List<Sequence> sequences, List<int[]> tokens) {
        String op = "PagedKvCache.prepare";
        if (sequences.isEmpty() || sequences.size() != tokens.size()) {
            throw new KilnException(op + ": expected one token array per sequence and at least one sequence, got "
                    + sequences.size() + " sequences and " + tokens.size() + " token arrays");
        }
        int count = sequences.size(), total = 0, blocksNeeded = 0;
        for (int s = 0; s < count; s++) {
            Sequence seq = sequences.get(s);
            checkUsable(op, seq);
            if (sequences.subList(0, s).contains(seq)) throw new KilnException(op + ": " + seq + " appears twice in one step");
            int n = tokens.get(s).length, after = seq.length + n;
            if (n == 0) throw new KilnException(op + ": " + seq + " brings no token");
            if (after > maxSequenceLength()) {
                throw new KilnException(op + ": " + seq + " would hold " + after + " tokens, more than the " + maxSequenceLength()
                        + " its block table addresses (" + maxBlocksPerSequence + " blocks of " + blockSize + ")");
            }
            total += n;
            blocksNeeded += Math.max(0, ceilDiv(after, blockSize) - seq.blocks.size());
        }
        if (blocksNeeded > freeBlocks.size()) {
            throw new KilnException(op + ": the step needs " + blocksNeeded + " more blocks, the cache has " + freeBlocks.size() + " free");
        }
        int[] tokenIds = new int[total], positions = new int[total], slots = new int[total];
        int[] tables = new int[count * maxBlocksPerSequence], lens = new int[count], starts = new int[count + 1], last = new int[count];
        int[] newTokens = new int[count], before = new int[count];
        int row = 0;
        for (int s = 0; s < count; s++) {
            Sequence seq = sequences.get(s);
            int[] ids = tokens.get(s);
            newTokens[s] = ids.length;
            before[s] = seq.length;
            while (seq.blocks.size() < ceilDiv(seq.length + ids.length, blockSize)) seq.blocks.add(freeBlocks.poll());
            for (int i = 0; i < ids.length; i++, row++) {
                int position = seq.length + i;
                tokenIds[row] = ids[i];
                positions[row] = position;
                slots[row] = seq.blocks.get(position / blockSize) * blockSize + position % blockSize;
            }
            for (int b = 0; b < seq.blocks.size(); b++) tables[s * maxBlocksPerSequence + b] = seq.blocks.get(b);
            lens[s] = seq.length + ids.length;
            starts[s + 1] = row;
            last[s] = row - 1;
        }
        return new Step(List.copyOf(sequences), newTokens, before, Tensor.of(tokenIds, total), Tensor.of(positions, total),
                Tensor.of(slots, total), Tensor.of(tables, count, maxBlocksPerSequence), Tensor.of(lens, count),
                Tensor.of(starts, count + 1), Tensor.of(last, count));
    }

    /** Advances the step's sequences by their new tokens, once the model has written them. */
    public void commit(Step step) {
        for (int s = 0; s < step.sequences().size(); s++) {
            Sequence seq = step.sequences().get(s);
            checkUsable("PagedKvCache.commit", seq);
            if (seq.length != step.lengthsBefore()[s]) {
                throw new KilnException("PagedKvCache.commit: " + seq + " changed since the step was prepared at length "
                        + step.lengthsBefore()[s]);
            }
        }
        for (int s = 0; s < step.sequences().size(); s++) step.sequences().get(s).length += step.newTokens()[s];
    }

    private void checkUsable(String op, Sequence s) {
        if (s.owner != this) throw new KilnException(op + ": sequence " + s.id + " belongs to another cache");
        if (s.freed) throw new KilnException(op + ": sequence " + s.id + " was freed");
    }

    private static int ceilDiv(int a, int b) { return (a + b - 1) / b; }

    @Override
    public String toString() {
        return "PagedKvCache(" + keys.size() + " layers, " + keys.getFirst().size(0) + " blocks of " + blockSize + ", "
                + freeBlocks.size() + " free) " + Arrays.toString(keys.getFirst().shape().dims());
    }
}
