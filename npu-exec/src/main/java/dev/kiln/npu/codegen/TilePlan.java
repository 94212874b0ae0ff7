package dev.kiln.npu.codegen;

import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A tile program cut into stages for {@link TileLoopCompiler}, with its SRAM slot layout:
 * which registers a stage reads from an earlier stage (spilled there at the end of the
 * writing stage, or read again from the input's slot).
 */
final class TilePlan {
    /** The functions after which a loop still inlines a second call: the three under 200 bytes of bytecode. */
    static final Set<UnaryFn> SMALL_CALLS = EnumSet.of(UnaryFn.EXP, UnaryFn.SIGMOID, UnaryFn.SILU);
    /** A call is inlined only if the loop has not already parsed much before it: at most this many other operations. */
    static final int OPS_BEFORE_CALL = 12;
    /** Caps a stage's size, so no loop grows past what C2 compiles quickly and in full. */
    static final int OPS_PER_STAGE = 48;

    final TileProgram program;
    final List<TileInstr> setup = new ArrayList<>();
    final List<List<TileInstr>> stages = new ArrayList<>();
    final int[] inputSlot, outputSlot;
    /** Slot of each register carried between stages (its value not a plain load), else -1. */
    final int[] spillSlot;
    /** Per stage, the registers whose value at the stage's end a later stage reads from their spill slot. */
    final List<Set<Integer>> spillAtEnd = new ArrayList<>();
    /** Per stage, the slot to read each register from that an earlier stage wrote: a spill slot, or the input slot it was loaded from. */
    final List<Map<Integer, Integer>> inbound = new ArrayList<>();
    final int slots;

    TilePlan(TileProgram program) {
        this.program = program;
        List<TileInstr> body = new ArrayList<>();
        for (TileInstr ins : program.instructions()) (ins.isSetup() ? setup : body).add(ins);
        cut(body);
        int next = 0;
        inputSlot = new int[program.inputs().size()];
        for (int k = 0; k < inputSlot.length; k++) inputSlot[k] = program.inputs().get(k).scalar() ? -1 : next++;
        outputSlot = new int[program.outputs()];
        for (int o = 0; o < outputSlot.length; o++) outputSlot[o] = next++;
        spillSlot = new int[program.registers()];
        Arrays.fill(spillSlot, -1);
        int[] writtenIn = new int[program.registers()];
        Arrays.fill(writtenIn, -1);
        // A register holding an input tile is read again from the input's slot, which no stage overwrites.
        int[] loadedFrom = new int[program.registers()];
        Arrays.fill(loadedFrom, -1);
        for (int s = 0; s < stages.size(); s++) {
            spillAtEnd.add(new HashSet<>());
            inbound.add(new HashMap<>());
        }
        for (int s = 0; s < stages.size(); s++) {
            for (TileInstr ins : stages.get(s)) {
                for (int r : reads(ins)) {
                    int w = writtenIn[r];
                    if (w < 0 || w == s || inbound.get(s).containsKey(r)) continue;
                    if (loadedFrom[r] >= 0) {
                        inbound.get(s).put(r, loadedFrom[r]);
                    } else {
                        spillAtEnd.get(w).add(r);
                        if (spillSlot[r] < 0) spillSlot[r] = next++;
                        inbound.get(s).put(r, spillSlot[r]);
                    }
                }
                int d = dst(ins);
                if (d >= 0) {
                    writtenIn[d] = s;
                    loadedFrom[d] = ins instanceof TileInstr.Load l ? inputSlot[l.input()] : -1;
                }
            }
        }
        slots = next;
    }

    /** Greedy: a new stage when a call could not be inlined after what the stage already holds, or the stage is full. */
    private void cut(List<TileInstr> body) {
        List<TileInstr> stage = new ArrayList<>();
        int calls = 0, ops = 0;
        boolean firstCallSmall = false;
        for (TileInstr ins : schedule(body)) {
            boolean call = isCall(ins);
            boolean inlinable = ops <= OPS_BEFORE_CALL && (calls == 0 || (calls == 1 && firstCallSmall));
            if ((stage.size() >= OPS_PER_STAGE || (call && !inlinable)) && !stage.isEmpty()) {
                stages.add(stage);
                stage = new ArrayList<>();
                calls = 0;
                ops = 0;
            }
            stage.add(ins);
            if (call) {
                if (calls == 0) firstCallSmall = isSmallCall(ins);
                calls++;
            } else {
                ops++;
            }
        }
        if (!stage.isEmpty() || stages.isEmpty()) stages.add(stage);
    }

    /**
     * The body reordered so that each call comes as early as its operands allow (the smaller
     * first when several could), everything else in program order: a list schedule that
     * keeps every read after its write and every write after the reads of the value it replaces.
     */
    static List<TileInstr> schedule(List<TileInstr> body) {
        List<TileInstr> remaining = new ArrayList<>(body), order = new ArrayList<>();
        while (!remaining.isEmpty()) {
            int pick = 0;
            for (int i = 1; i < remaining.size(); i++) {
                TileInstr c = remaining.get(i);
                if (!isCall(c) || !movableToFront(remaining, i)) continue;
                if (!isCall(remaining.get(pick)) || (isSmallCall(c) && !isSmallCall(remaining.get(pick)))) pick = i;
            }
            order.add(remaining.remove(pick));
        }
        return order;
    }

    /** Whether remaining[i] can run before all of remaining[0..i): no register it reads or writes is written or read there. */
    private static boolean movableToFront(List<TileInstr> remaining, int i) {
        TileInstr c = remaining.get(i);
        int d = dst(c);
        for (int j = 0; j < i; j++) {
            TileInstr e = remaining.get(j);
            int w = dst(e);
            for (int r : reads(c)) if (r == w) return false;
            if (d >= 0 && (d == w || Arrays.stream(reads(e)).anyMatch(r -> r == d))) return false;
        }
        return true;
    }

    /** A call after which another can still be inlined: a small VectorMath function, or a lane-by-lane helper (which boxes anyway). */
    static boolean isSmallCall(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Unary u -> SMALL_CALLS.contains(u.fn());
            case TileInstr.Binary b -> laneByLane(b.fn());
            default -> false;
        };
    }

    static boolean isCall(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Unary u -> switch (u.fn()) {
                case NEG, ABS, RELU, SQRT, RSQRT, LOGICAL_NOT -> false;
                default -> true;
            };
            case TileInstr.Binary b -> laneByLane(b.fn());
            default -> false;
        };
    }

    private static boolean laneByLane(BinaryFn fn) {
        return fn == BinaryFn.POW || fn == BinaryFn.TRUNC_DIV || fn == BinaryFn.FLOOR_DIV;
    }

    static int[] reads(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Store s -> new int[] {s.src()};
            case TileInstr.Unary u -> new int[] {u.src()};
            case TileInstr.Binary b -> new int[] {b.a(), b.b()};
            case TileInstr.Clamp c -> new int[] {c.src()};
            case TileInstr.Where w -> new int[] {w.cond(), w.x(), w.y()};
            case TileInstr.Load l -> new int[0];
            case TileInstr.Broadcast b -> new int[0];
            case TileInstr.Constant c -> new int[0];
        };
    }

    static int dst(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Load l -> l.dst();
            case TileInstr.Broadcast b -> b.dst();
            case TileInstr.Constant c -> c.dst();
            case TileInstr.Unary u -> u.dst();
            case TileInstr.Binary b -> b.dst();
            case TileInstr.Clamp c -> c.dst();
            case TileInstr.Where w -> w.dst();
            case TileInstr.Store s -> -1;
        };
    }
}
