package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.ir.ValueRef;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.fused.FusedKernel;
import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.npu.kernels.gemm.Epilogue;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Shape;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * Lowers a graph to a {@link KernelProgram}: each matmul with an epilogue chain
 * ({@link FuseMatmulEpilogue}) becomes one matmul launch, each fusion group of
 * {@link FusePointwise} (among the remaining nodes) one fused tile program, every other
 * op an eager launch, in an order that respects the dependencies between groups.
 *
 * <p>Memory transfers are launches too: an epilogue's row or full operand and a view whose
 * input cannot be viewed that way (a reshape of a transpose) read a contiguous buffer, so a
 * non-contiguous view reaching them is first gathered into one by a
 * {@link KernelProgram.Transfer}, placed in the arena like any other value. A fused kernel
 * reads views where they lie: its DMA gathers each tile through the view's strides, so a
 * transpose, a strided slice or an {@code expand} costs no copy of its own. Lowering
 * follows each value's layout through the views from the graph's inputs, taken to be
 * contiguous (as every other launch's output is), so a view that is provably contiguous (a
 * reshape, a slice of rows) is read in place. One transfer serves every reader of a value.
 */
public final class Lowering {
    private Lowering() {}

    public static KernelProgram lower(Graph g, NpuDevice device) { return lower(g, device, java.util.Set.of()); }

    /**
     * Lowers {@code g} whose inputs at {@code weights} are frozen weights: a matmul whose
     * right operand is a strided view of values computed from weights alone (a linear
     * layer's {@code W.t()}) reads it through a transfer into contiguous memory, which the
     * program marks as depending on weights only, so that it runs once while the same
     * weights are bound (see {@link KernelProgram#weights}).
     */
    public static KernelProgram lower(Graph g, NpuDevice device, java.util.Set<Integer> weights) {
        List<FuseMatmulEpilogue.Group> matmuls = FuseMatmulEpilogue.groups(g);
        java.util.Set<Integer> claimed = new java.util.HashSet<>();
        for (FuseMatmulEpilogue.Group m : matmuls) claimed.addAll(m.nodes());
        return lower(g, FusePointwise.groups(g, claimed), matmuls, device, weights);
    }

    public static KernelProgram lower(Graph g, List<FusePointwise.Group> groups, NpuDevice device) {
        return lower(g, groups, List.of(), device);
    }

    public static KernelProgram lower(Graph g, List<FusePointwise.Group> groups, List<FuseMatmulEpilogue.Group> matmuls, NpuDevice device) {
        return lower(g, groups, matmuls, device, java.util.Set.of());
    }

    private static KernelProgram lower(Graph g, List<FusePointwise.Group> groups, List<FuseMatmulEpilogue.Group> matmuls, NpuDevice device,
                                       java.util.Set<Integer> weights) {
        int n = g.nodes().size();
        int[] slotBase = new int[n + 1];
        for (int i = 0; i < n; i++) slotBase[i + 1] = slotBase[i] + g.node(i).outputs().size();
        java.util.function.ToIntFunction<ValueRef> own = v -> slotBase[v.node()] + v.output();
        // Inputs that an in-place op updates and other nodes read: those read a copy made first, the
        // input as it was (the program's first launches), so the update can run in the input's memory.
        List<KernelProgram.Launch> launches = new ArrayList<>();
        Map<ValueRef, Integer> copies = new HashMap<>();
        int slots = slotBase[n];
        for (ValueRef v : inputsReadBesideTheirUpdate(g)) {
            TensorMeta m = g.meta(v);
            launches.add(new KernelProgram.Transfer(m.shape(), m.dtype(), List.of(own.applyAsInt(v)), List.of(slots)));
            copies.put(v, slots++);
        }
        java.util.function.ToIntFunction<ValueRef> slot = v -> {
            Integer copy = copies.get(v);
            return copy != null ? copy : own.applyAsInt(v);
        };

        // Each node's unit: its group's first node, or itself.
        int[] unit = new int[n];
        for (int i = 0; i < n; i++) unit[i] = i;
        Map<Integer, FusePointwise.Group> byUnit = new HashMap<>();
        for (FusePointwise.Group grp : groups) {
            for (int i : grp.nodes()) unit[i] = grp.nodes().get(0);
            byUnit.put(grp.nodes().get(0), grp);
        }
        Map<Integer, FuseMatmulEpilogue.Group> matmulByUnit = new HashMap<>();
        for (FuseMatmulEpilogue.Group m : matmuls) {
            for (int i : m.nodes()) unit[i] = m.matmul();
            matmulByUnit.put(m.matmul(), m);
        }

        List<Integer> inputs = new ArrayList<>(java.util.Collections.nCopies(g.inputCount(), 0));
        for (Node node : g.nodes()) if (node instanceof Node.Input in) inputs.set(in.index(), own.applyAsInt(node.value(0)));

        Transfers transfers = new Transfers(g, slot, slots, launches, weights);
        for (int u : unitOrder(g, unit)) {
            FusePointwise.Group grp = byUnit.get(u);
            FuseMatmulEpilogue.Group mm = matmulByUnit.get(u);
            if (mm != null) {
                launches.add(matmulLaunch(g, mm, slot, transfers));
            } else if (grp != null) {
                TileProgram program = tileProgram(g, grp);
                List<Integer> out = grp.outputs().stream().map(slot::applyAsInt).toList();
                if (FusedKernel.tileFor(program.registers(), device) > 0) {
                    // The kernel's DMA reads any strides into its tiles: views need no transfer.
                    List<Integer> in = grp.inputs().stream().map(slot::applyAsInt).toList();
                    launches.add(new KernelProgram.Fused(kernelName("fused", g, grp.nodes(), u), grp.shape(), program, in, out));
                    continue;
                }
                // Too many live values for one core's SRAM: run the ops one by one.
                for (int i : grp.nodes()) launches.add(eager((Node.Apply) g.node(i), slot, transfers));
            } else if (g.node(u) instanceof Node.Apply ap) {
                launches.add(ap.op() instanceof Op.InPlace inPlace ? inPlace(ap, inPlace, slot, own) : eager(ap, slot, transfers));
            }
        }
        List<Integer> outputs = g.outputs().stream().map(slot::applyAsInt).toList();
        List<Integer> weightSlots = weights.stream().sorted().map(inputs::get).toList();
        return new KernelProgram(transfers.slots(), inputs, launches, outputs, weightSlots);
    }

    /**
     * The layout each value has when the program runs (graph inputs and every launch's
     * output contiguous, views as their ops lay them out) and the transfers that gather
     * non-contiguous ones for readers that need contiguous memory, each into a new slot.
     */
    private static final class Transfers {
        private final Graph g;
        private final java.util.function.ToIntFunction<ValueRef> slot;
        private final List<KernelProgram.Launch> launches;
        private final Map<ValueRef, Layout> layouts = new HashMap<>();
        private final Map<Integer, Integer> gathered = new HashMap<>();
        private int slots;
        /** Per node: computed from frozen weights (and constants) alone. */
        private final boolean[] fromWeights;

        Transfers(Graph g, java.util.function.ToIntFunction<ValueRef> slot, int slots, List<KernelProgram.Launch> launches,
                  java.util.Set<Integer> weights) {
            this.g = g;
            this.slot = slot;
            this.slots = slots;
            this.launches = launches;
            this.fromWeights = new boolean[g.nodes().size()];
            for (Node node : g.nodes()) {
                fromWeights[node.id()] = switch (node) {
                    case Node.Input in -> weights.contains(in.index());
                    case Node.Apply ap -> ap.inputs().stream().allMatch(v -> fromWeights[v.node()]);
                };
            }
        }

        /** The slot a matmul reads its right operand from: contiguous when it is a view of weights, so the GEMM packs it fastest. */
        int matmulRight(ValueRef b) {
            return fromWeights[b.node()] && !layout(b).isContiguous() ? contiguous(b) : slot.applyAsInt(b);
        }

        int slots() { return slots; }

        Layout layout(ValueRef v) {
            Layout known = layouts.get(v);
            if (known != null) return known;
            Layout l;
            if (g.node(v.node()) instanceof Node.Apply ap && ap.op() instanceof Op.ViewOp view) {
                ValueRef in = ap.inputs().getFirst();
                Layout viewed = view.view(layout(in));
                // A view that cannot be taken reads its input through a transfer.
                l = viewed != null ? viewed : view.view(Layout.contiguous(g.meta(in).shape()));
            } else {
                l = Layout.contiguous(g.meta(v).shape());
            }
            layouts.put(v, l);
            return l;
        }

        boolean viewable(Node.Apply ap) {
            return !(ap.op() instanceof Op.ViewOp view) || view.view(layout(ap.inputs().getFirst())) != null;
        }

        /** The slot of {@code v} in contiguous memory: its own, or a transfer's (added before the reader at its first use). */
        int contiguous(ValueRef v) {
            int s = slot.applyAsInt(v);
            if (layout(v).isContiguous()) return s;
            return gathered.computeIfAbsent(s, from -> {
                TensorMeta m = g.meta(v);
                int to = slots++;
                launches.add(new KernelProgram.Transfer(m.shape(), m.dtype(), List.of(from), List.of(to)));
                return to;
            });
        }
    }

    private static KernelProgram.MatMulFused matmulLaunch(Graph g, FuseMatmulEpilogue.Group mm, java.util.function.ToIntFunction<ValueRef> slot,
                                                          Transfers transfers) {
        Node.Apply matmul = (Node.Apply) g.node(mm.matmul());
        ValueRef product = matmul.value(0);
        List<ValueRef> inputs = new ArrayList<>(List.of(product));
        inputs.addAll(mm.operands());
        Shape shape = g.meta(product).shape();
        TileProgram program = tileProgram(g, new FusePointwise.Group(shape, mm.chain(), inputs, List.of(mm.output())));
        List<Epilogue.Source> sources = new ArrayList<>(List.of(Epilogue.Source.ACCUMULATOR));
        sources.addAll(mm.sources());
        List<Integer> in = new ArrayList<>(List.of(slot.applyAsInt(matmul.inputs().get(0)), transfers.matmulRight(matmul.inputs().get(1))));
        // The epilogue walks row and full operands as contiguous rows; the GEMM reads its operands at any strides.
        for (int k = 0; k < mm.operands().size(); k++) {
            ValueRef v = mm.operands().get(k);
            in.add(mm.sources().get(k) == Epilogue.Source.SCALAR ? slot.applyAsInt(v) : transfers.contiguous(v));
        }
        return new KernelProgram.MatMulFused(kernelName("matmul", g, mm.chain(), mm.matmul()), shape, new Epilogue(program, sources), in,
                List.of(slot.applyAsInt(mm.output())));
    }

    /** At most this many distinct op names go into a kernel's name; longer chains end in "etc". */
    private static final int NAMED_OPS = 6;

    /**
     * A kernel's name says what it fuses, as torch.compile's do: its kind, the distinct ops of
     * its members in order, and the graph node it starts at ({@code fused_mul_add_gelu_12},
     * {@code matmul_add_silu_40}), so explain and profiles show the member ops.
     */
    static String kernelName(String kind, Graph g, List<Integer> members, int first) {
        java.util.LinkedHashSet<String> ops = new java.util.LinkedHashSet<>();
        for (int i : members) ops.add(((Node.Apply) g.node(i)).op().name().replaceAll("[^A-Za-z0-9]+", ""));
        StringBuilder name = new StringBuilder(kind);
        ops.stream().limit(NAMED_OPS).forEach(op -> name.append('_').append(op));
        if (ops.size() > NAMED_OPS) name.append("_etc");
        return name.append('_').append(first).toString();
    }

    private static KernelProgram.Eager eager(Node.Apply ap, java.util.function.ToIntFunction<ValueRef> slot, Transfers transfers) {
        List<Integer> out = new ArrayList<>();
        for (int o = 0; o < ap.outputs().size(); o++) out.add(slot.applyAsInt(ap.value(o)));
        List<Integer> in = ap.op() instanceof Op.MatMul
                ? List.of(slot.applyAsInt(ap.inputs().get(0)), transfers.matmulRight(ap.inputs().get(1)))
                : transfers.viewable(ap) ? ap.inputs().stream().map(slot::applyAsInt).toList()
                : List.of(transfers.contiguous(ap.inputs().getFirst()));
        return new KernelProgram.Eager(ap.op(), in, out);
    }

    /**
     * The graph inputs that an in-place op updates and that other nodes read (or the graph
     * returns) too. A value the graph computed must have its update as its only reader, as the
     * tracer records it: the program runs the update in the value's memory.
     */
    private static List<ValueRef> inputsReadBesideTheirUpdate(Graph g) {
        List<ValueRef> out = new ArrayList<>();
        for (Node node : g.nodes()) {
            if (!(node instanceof Node.Apply w && w.op() instanceof Op.InPlace inPlace)) continue;
            for (int k : inPlace.overwrites()) {
                ValueRef updated = w.inputs().get(k);
                boolean shared = g.outputs().contains(updated);
                for (Node other : g.nodes()) shared |= other != w && other instanceof Node.Apply ap && ap.inputs().contains(updated);
                if (!shared) continue;
                if (!(g.node(updated.node()) instanceof Node.Input)) {
                    throw new IllegalStateException("%" + w.id() + " (" + w.op().name() + ") updates " + updated
                            + " in place, which other nodes read too");
                }
                out.add(updated);
            }
        }
        return out;
    }

    /** An in-place op's launch: it updates its values in their own memory, never in a copy of them. */
    private static KernelProgram.Eager inPlace(Node.Apply ap, Op.InPlace op, java.util.function.ToIntFunction<ValueRef> slot,
                                               java.util.function.ToIntFunction<ValueRef> own) {
        List<Integer> in = new ArrayList<>();
        for (int k = 0; k < ap.inputs().size(); k++) {
            in.add((op.overwrites().contains(k) ? own : slot).applyAsInt(ap.inputs().get(k)));
        }
        List<Integer> out = new ArrayList<>();
        for (int o = 0; o < ap.outputs().size(); o++) out.add(own.applyAsInt(ap.value(o)));
        return new KernelProgram.Eager(ap.op(), in, out);
    }

    /** Units (groups, other nodes) in a dependency order, earliest first node first. */
    private static List<Integer> unitOrder(Graph g, int[] unit) {
        int n = unit.length;
        List<List<Integer>> succ = new ArrayList<>();
        for (int i = 0; i < n; i++) succ.add(new ArrayList<>());
        int[] indegree = new int[n];
        for (Node node : g.nodes()) {
            if (!(node instanceof Node.Apply ap)) continue;
            for (ValueRef v : ap.inputs()) {
                int from = unit[v.node()], to = unit[node.id()];
                if (from != to && !succ.get(from).contains(to)) {
                    succ.get(from).add(to);
                    indegree[to]++;
                }
            }
        }
        PriorityQueue<Integer> ready = new PriorityQueue<>();
        for (int i = 0; i < n; i++) if (unit[i] == i && indegree[i] == 0) ready.add(i);
        List<Integer> order = new ArrayList<>();
        while (!ready.isEmpty()) {
            int u = ready.poll();
            order.add(u);
            for (int s : succ.get(u)) if (--indegree[s] == 0) ready.add(s);
        }
        return order;
    }

    // ---------------------------------------------------------------- tile programs

    /**
     * The tile program of a group. 0-d inputs and host scalars get registers filled once
     * per worker; tile inputs are loaded just before their first use; a register is
     * reused once the last use of its value has run; each group output is stored as
     * soon as it is computed.
     */
    static TileProgram tileProgram(Graph g, FusePointwise.Group grp) {
        return new ProgramBuilder(g, grp).build();
    }

    private static final class ProgramBuilder {
        private final Graph g;
        private final FusePointwise.Group grp;
        private final List<TileProgram.InputSpec> specs = new ArrayList<>();
        private final Map<ValueRef, Integer> inputIndex = new HashMap<>();
        private final Map<ValueRef, Integer> reg = new HashMap<>();
        private final Map<Integer, Integer> constants = new HashMap<>();
        private final Map<ValueRef, Integer> uses = new HashMap<>();
        private final List<TileInstr> setup = new ArrayList<>();
        private final List<TileInstr> body = new ArrayList<>();
        private final ArrayDeque<Integer> free = new ArrayDeque<>();
        private int[] pending = new int[8];
        private boolean[] pinned = new boolean[8];
        private int registers;

        ProgramBuilder(Graph g, FusePointwise.Group grp) {
            this.g = g;
            this.grp = grp;
        }

        TileProgram build() {
            for (ValueRef v : grp.inputs()) {
                TensorMeta m = g.meta(v);
                boolean scalar = m.shape().rank() == 0 && grp.shape().rank() != 0;
                inputIndex.put(v, specs.size());
                specs.add(new TileProgram.InputSpec(m.dtype(), scalar));
                if (scalar) {
                    int r = pinnedRegister();
                    setup.add(new TileInstr.Broadcast(inputIndex.get(v), r));
                    reg.put(v, r);
                }
            }
            for (int i : grp.nodes()) for (ValueRef v : ((Node.Apply) g.node(i)).inputs()) uses.merge(v, 1, Integer::sum);
            for (int i : grp.nodes()) lower((Node.Apply) g.node(i));
            List<TileInstr> code = new ArrayList<>(setup);
            code.addAll(body);
            return new TileProgram(specs, grp.outputs().size(), registers, code);
        }

        private void lower(Node.Apply ap) {
            ValueRef out = ap.value(0);
            List<ValueRef> in = ap.inputs();
            if (ap.op() instanceof Op.Cast) {
                // The register already holds float32 (an input is converted as it is loaded): the same register under a second name.
                int r = operand(in.get(0));
                reg.put(out, r);
                pending[r] += uses.getOrDefault(out, 0);
                release(r);
                store(out, r);
                return;
            }
            int[] ops = new int[in.size()];
            for (int k = 0; k < ops.length; k++) ops[k] = operand(in.get(k));
            // x ** 2 is x * x, as the eager kernel computes it.
            boolean square = ap.op() instanceof Op.BinaryScalar s && s.fn() == BinaryFn.POW && !s.scalarFirst() && s.scalar() == 2;
            int scalarReg = ap.op() instanceof Op.BinaryScalar s && !square ? constant((float) s.scalar()) : -1;
            for (int r : ops) release(r);
            int dst = allocate();
            TileInstr ins = switch (ap.op()) {
                case Op.Unary u -> new TileInstr.Unary(u.fn(), ops[0], dst);
                case Op.Binary b -> new TileInstr.Binary(b.fn(), ops[0], ops[1], dst);
                case Op.BinaryScalar s when square -> new TileInstr.Binary(BinaryFn.MUL, ops[0], ops[0], dst);
                case Op.BinaryScalar s -> s.scalarFirst() ? new TileInstr.Binary(s.fn(), scalarReg, ops[0], dst)
                        : new TileInstr.Binary(s.fn(), ops[0], scalarReg, dst);
                case Op.Clamp c -> new TileInstr.Clamp((float) c.min(), (float) c.max(), ops[0], dst);
                case Op.Where w -> new TileInstr.Where(ops[0], ops[1], ops[2], dst);
                default -> throw new IllegalArgumentException("not a fusible op: " + ap.op());
            };
            body.add(ins);
            reg.put(out, dst);
            pending[dst] = uses.getOrDefault(out, 0);
            store(out, dst);
            // A value only returned, never read in the group, frees its register at once.
            if (pending[dst] == 0) free.push(dst);
        }

        private void store(ValueRef v, int r) {
            int o = grp.outputs().indexOf(v);
            if (o >= 0) body.add(new TileInstr.Store(r, o));
        }

        /** The register holding {@code v}, loading a tile input on first use; counts one use. */
        private int operand(ValueRef v) {
            Integer r = reg.get(v);
            if (r == null) {
                r = allocate();
                body.add(new TileInstr.Load(inputIndex.get(v), r));
                reg.put(v, r);
                pending[r] = uses.get(v);
            }
            return r;
        }

        /** One use of register r is done; the last frees it (after the instruction reading it, which may write it). */
        private void release(int r) {
            if (pinned[r]) return;
            if (--pending[r] == 0) free.push(r);
        }

        private int constant(float value) {
            return constants.computeIfAbsent(Float.floatToRawIntBits(value), bits -> {
                int r = pinnedRegister();
                setup.add(new TileInstr.Constant(value, r));
                return r;
            });
        }

        private int pinnedRegister() {
            int r = fresh();
            pinned[r] = true;
            return r;
        }

        private int allocate() {
            return free.isEmpty() ? fresh() : free.pop();
        }

        private int fresh() {
            int r = registers++;
            if (r >= pending.length) {
                pending = java.util.Arrays.copyOf(pending, 2 * r);
                pinned = java.util.Arrays.copyOf(pinned, 2 * r);
            }
            return r;
        }
    }
}
