package dev.kiln.npu.kernels.gemm;

import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Storage;
import dev.kiln.tensor.Tensor;

import java.lang.ref.Cleaner;
import java.lang.ref.WeakReference;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The right operand of one matmul call site packed whole, kept while the same values come
 * back: a compiled program's linear layer reads the same weight at every call, and its
 * GEMM then packs nothing of it (packing a transposed weight was 13 to 15% of the W4
 * block's time). Eager code has no call site to keep it at.
 *
 * <p>The panels are made the second time in a row that the same memory (storage, layout
 * and {@link Storage#version version}) comes as B, so an operand that changes at every
 * call (activations) costs one comparison and no memory. They live on the heap, within a
 * budget shared by every site (a quarter of the maximum heap, or
 * {@code -Dkiln.npu.packedWeightBytes}); past it, products pack as usual.
 */
public final class WeightPanels {
    /** Made with the first panels, not on the first call's path (a cleaner starts a thread). */
    private static final class Reclaimer {
        static final Cleaner CLEANER = Cleaner.create();
    }

    /** Bytes of panels the sites sharing it may hold, and hold now. */
    static final class Budget {
        private final long limit;
        private final AtomicLong held = new AtomicLong();

        Budget(long limit) { this.limit = limit; }

        long held() { return held.get(); }

        boolean take(long bytes) {
            if (held.addAndGet(bytes) <= limit) return true;
            held.addAndGet(-bytes);
            return false;
        }

        void giveBack(long bytes) { held.addAndGet(-bytes); }
    }

    private static final Budget SHARED = new Budget(Long.getLong("kiln.npu.packedWeightBytes", Runtime.getRuntime().maxMemory() / 4));

    private final Budget budget;

    /** A site within the budget every site shares. */
    public WeightPanels() { this(SHARED); }

    WeightPanels(Budget budget) { this.budget = budget; }

    /** The last B seen here: its memory, compared by identity, and the panels when made. */
    private record Seen(WeakReference<Storage> storage, int version, Layout layout, float[] panels) {
        boolean is(Storage s, int v, Layout l) {
            return storage.get() == s && version == v && layout.equals(l);
        }
    }

    private volatile Seen last;

    /** Bytes of panels this site holds. */
    public long bytes() {
        Seen s = last;
        return s == null || s.panels() == null ? 0 : (long) s.panels().length * Float.BYTES;
    }

    /** B of {@code p} ({@code b}) packed whole, when it came last time too; null otherwise. */
    float[] panelsFor(FloatGemm gemm, GemmProblem p, Tensor b) {
        // Panels hold one matrix: every batch entry must read the same B.
        long[] offsets = p.b().offsets();
        for (long o : offsets) if (o != offsets[0]) return null;
        Storage storage = b.storage();
        Layout layout = b.layout();
        int version = storage.version();
        Seen s = last;
        if (s == null || !s.is(storage, version, layout)) {
            last = new Seen(new WeakReference<>(storage), version, layout, null);
            return null;
        }
        if (s.panels() != null) return s.panels();
        long bytes = (long) p.k() * Blocking.roundUp(p.n(), gemm.blocking.nr()) * Float.BYTES;
        if (bytes / Float.BYTES > Integer.MAX_VALUE - 8 || !budget.take(bytes)) return null;
        float[] panels = gemm.packWhole(p.b(), p.k(), p.n());
        Budget owner = budget;
        Reclaimer.CLEANER.register(panels, () -> owner.giveBack(bytes));
        last = new Seen(s.storage(), version, layout, panels);
        return panels;
    }
}
