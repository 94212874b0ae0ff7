package dev.kiln.opt.npu;

import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Storage;
import dev.kiln.tensor.Tensor;

import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Arenas for one {@link MemoryPlan}: a run takes one, fills its intermediate values into
 * it and gives it back, so repeated runs allocate no DRAM for intermediates. Runs on
 * several threads at once each take their own; up to eight idle arenas (or one per core
 * on larger machines) are kept for a handful of serving threads, and the arenas of a
 * larger burst go back to the DRAM pool when collected.
 */
final class ArenaPool {
    private static final int IDLE = Math.max(8, Runtime.getRuntime().availableProcessors());
    /** Kiln's own tests fill fresh DRAM with NaNs ({@code kiln.npu.poison}); arenas do the same on every run. */
    private static final boolean POISON = Boolean.getBoolean("kiln.npu.poison");

    /** One arena: its memory and a tensor per arena slot (null for other slots), built once. */
    record Arena(Storage memory, Tensor[] tensors) {}

    private final MemoryPlan plan;
    private final ConcurrentLinkedDeque<Arena> idle = new ConcurrentLinkedDeque<>();
    private final AtomicInteger idleCount = new AtomicInteger();
    private final AtomicInteger created = new AtomicInteger();

    ArenaPool(MemoryPlan plan) { this.plan = plan; }

    MemoryPlan plan() { return plan; }

    /** Arenas allocated so far (for tests: runs reuse them). */
    int created() { return created.get(); }

    Arena take() {
        Arena a = idle.poll();
        if (a != null) {
            idleCount.decrementAndGet();
            if (POISON) a.memory().segment().fill((byte) 0xFF);
            return a;
        }
        created.incrementAndGet();
        Storage memory = Storage.allocate(plan.arenaBytes());
        Tensor[] tensors = new Tensor[plan.slots()];
        for (MemoryPlan.Buffer b : plan.buffers()) {
            for (int s : b.slots()) {
                TensorMeta m = plan.meta(s);
                // Each value gets a storage of exactly its bytes at offset 0, as a fresh allocation would.
                Storage slice = Storage.wrap(memory.segment().asSlice(b.offset(), Math.max(1, MemoryPlan.bytesOf(m))));
                tensors[s] = Tensor.fromStorage(m.dtype(), Layout.contiguous(m.shape()), slice);
            }
        }
        return new Arena(memory, tensors);
    }

    /** Returns an arena after a run, finished or failed: nothing in it outlives the run. */
    void give(Arena a) {
        if (idleCount.incrementAndGet() <= IDLE) {
            idle.push(a);
        } else {
            idleCount.decrementAndGet();
        }
    }
}
