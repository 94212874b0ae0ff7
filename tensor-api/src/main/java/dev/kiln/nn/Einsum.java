package dev.kiln.nn;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * Einstein summation ({@code torch.einsum}), lowered to Kiln ops only (diagonal,
 * permute, reshape, sum, mul, matmul) so that a tracer records it as primitives.
 *
 * <p>Semantics follow PyTorch: labels are the letters a-z and A-Z; one {@code ...} per
 * operand stands for its remaining dimensions, which broadcast (right-aligned) across
 * operands; a label repeated within an operand takes the diagonal; a label of size 1
 * broadcasts against the same label of size n in another operand; labels absent from
 * the output (ellipsis dimensions included) are summed. Without {@code ->} the output is
 * the ellipsis dimensions followed by the labels that appear exactly once, in ASCII
 * order (upper case before lower case).
 *
 * <p>Operands are contracted left to right, two at a time. A label is summed as soon as
 * neither a later operand nor the output needs it. A pair's shared labels that are still
 * needed become batch dimensions and the others are contracted, which maps the pair onto
 * one batched matmul of [batch, left, contracted] by [batch, contracted, right] (a
 * broadcast multiply when nothing is contracted). Each intermediate result has one
 * dimension per live label, so it must fit {@link Shape#MAX_RANK}: an equation may use
 * all 52 letters, but not keep more than 8 of them live at once.
 *
 * <p>Operands are promoted to one dtype; int32 accumulates in int64 and is narrowed at
 * the end (giving int32's wrap-around result); all-bool operands are rejected.
 */
final class Einsum {
    private Einsum() {}

    /** Letters map to 0-25 (A-Z) and 26-51 (a-z), so that numeric order is ASCII order; ellipsis dimensions follow. */
    private static final int LETTERS = 52;
    /** A parsed '...' in a subscript list, before it is expanded into ellipsis labels. */
    private static final int ELLIPSIS = -1;

    static Tensor evaluate(String equation, Tensor... operands) {
        Plan plan = Plan.of(equation, operands);
        DType common = operands[0].dtype();
        for (Tensor t : operands) common = DType.promote(common, t.dtype());
        if (common == DType.BOOL) {
            throw new KilnTypeException("einsum: bool operands are not supported; convert them first, e.g. x.to(DType.INT64)");
        }
        Contraction c = new Contraction(plan, common == DType.INT32 ? DType.INT64 : common);
        Labeled acc = c.prepare(0, operands[0]);
        for (int k = 1; k < operands.length; k++) acc = c.pair(acc, c.prepare(k, operands[k]), k);
        acc = c.sumUnneeded(acc, operands.length - 1);
        return c.permute(acc, plan.output).tensor.to(common);
    }

    /** A tensor with one label per dimension. */
    private record Labeled(Tensor tensor, int[] labels) {
        int size(int label) { return tensor.size(indexOf(labels, label)); }
        boolean has(int label) { return indexOf(labels, label) >= 0; }
    }

    // ================================================================ lowering

    /** The op sequence: diagonals, early sums, pairwise matmuls or products, the final permutation. */
    private record Contraction(Plan plan, DType computeType) {

        /** Operand k with its labels, each repeated label turned into a diagonal (a view). */
        Labeled prepare(int k, Tensor t) {
            Labeled x = new Labeled(t, plan.inputs[k]);
            for (int[] pair = repeatedPair(x.labels); pair != null; pair = repeatedPair(x.labels)) {
                int label = x.labels[pair[0]];
                int[] rest = removeIndices(x.labels, pair[0], pair[1]);
                int[] labels = Arrays.copyOf(rest, rest.length + 1);
                labels[rest.length] = label;
                x = new Labeled(x.tensor.diagonal(pair[0], pair[1]), labels);
            }
            return x;
        }

        /** Contracts the running result {@code a} with operand {@code k}. */
        Labeled pair(Labeled a, Labeled b, int k) {
            // A label of size 1 on one side and n on the other is constant along it there: drop it from that side.
            for (int label : a.labels) {
                if (b.has(label) && a.size(label) != b.size(label)) {
                    if (a.size(label) == 1) a = squeeze(a, label);
                    else b = squeeze(b, label);
                }
            }
            Labeled left = a, right = b;
            IntPredicate needed = label -> plan.neededAfter(label, k);
            a = sum(a, label -> !right.has(label) && !needed.test(label));
            b = sum(b, label -> !left.has(label) && !needed.test(label));
            List<Integer> batch = new ArrayList<>(), contracted = new ArrayList<>(), leftOnly = new ArrayList<>(), rightOnly = new ArrayList<>();
            for (int label : a.labels) {
                if (b.has(label)) (needed.test(label) ? batch : contracted).add(label);
                else leftOnly.add(label);
            }
            for (int label : b.labels) if (!a.has(label)) rightOnly.add(label);
            checkRank(k, batch, leftOnly, rightOnly);
            return contracted.isEmpty()
                    ? multiply(a, b, toArray(batch), toArray(leftOnly), toArray(rightOnly))
                    : matmul(a, b, toArray(batch), toArray(leftOnly), toArray(contracted), toArray(rightOnly));
        }

        /**
         * The pair's result holds one dimension per live label; a tensor has at most
         * {@link Shape#MAX_RANK}, so more cannot be represented (the letters themselves are not limited).
         */
        private void checkRank(int k, List<Integer> batch, List<Integer> leftOnly, List<Integer> rightOnly) {
            int rank = batch.size() + leftOnly.size() + rightOnly.size();
            if (rank <= Shape.MAX_RANK) return;
            StringBuilder live = new StringBuilder();
            boolean ellipsis = false;
            for (List<Integer> part : List.of(batch, leftOnly, rightOnly)) {
                for (int label : part) {
                    if (label < LETTERS) live.append(letter(label));
                    else if (!ellipsis) live.append("...");
                    ellipsis |= label >= LETTERS;
                }
            }
            throw new KilnShapeException("einsum: '" + plan.equation + "': contracting operand " + k + " with operand"
                    + (k == 1 ? " 0" : "s 0.." + (k - 1)) + " leaves " + rank + " dimensions (" + live + ") that later operands"
                    + " or the output need, above the maximum tensor rank " + Shape.MAX_RANK
                    + "; operands are contracted left to right, so reorder them to sum labels sooner, or split the einsum");
        }

        /** The pair as one (batched) matmul: [batch, left, contracted] @ [batch, contracted, right]. */
        private Labeled matmul(Labeled a, Labeled b, int[] batch, int[] leftOnly, int[] contracted, int[] rightOnly) {
            Tensor lhs = arithmetic(permute(a, concat(batch, leftOnly, contracted)).tensor);
            Tensor rhs = arithmetic(permute(b, concat(batch, contracted, rightOnly)).tensor);
            int nb = batch.length, nl = leftOnly.length, nc = contracted.length;
            int[] batchSizes = Arrays.copyOfRange(lhs.shape().dims(), 0, nb);
            int l = product(lhs, nb, nb + nl), c = product(lhs, nb + nl, nb + nl + nc), r = product(rhs, nb + nc, rhs.rank());
            int[] batchFlat = nb == 0 ? new int[0] : new int[] {product(lhs, 0, nb)};
            Tensor product = reshape(lhs, concat(batchFlat, new int[] {l, c}))
                    .matmul(reshape(rhs, concat(batchFlat, new int[] {c, r})));
            int[] sizes = concat(batchSizes, Arrays.copyOfRange(lhs.shape().dims(), nb, nb + nl),
                    Arrays.copyOfRange(rhs.shape().dims(), nb + nc, rhs.rank()));
            return new Labeled(reshape(product, sizes), concat(batch, leftOnly, rightOnly));
        }

        /** The pair with nothing to contract, as a broadcast product [batch, left, 1...] * [batch, 1..., right]. */
        private Labeled multiply(Labeled a, Labeled b, int[] batch, int[] leftOnly, int[] rightOnly) {
            Tensor lhs = permute(a, concat(batch, leftOnly)).tensor;
            Tensor rhs = permute(b, concat(batch, rightOnly)).tensor;
            int nb = batch.length, nl = leftOnly.length, nr = rightOnly.length;
            int[] lhsShape = Arrays.copyOf(lhs.shape().dims(), nb + nl + nr);
            Arrays.fill(lhsShape, nb + nl, lhsShape.length, 1);
            int[] rhsShape = new int[nb + nl + nr];
            Arrays.fill(rhsShape, 1);
            System.arraycopy(rhs.shape().dims(), 0, rhsShape, 0, nb);
            System.arraycopy(rhs.shape().dims(), nb, rhsShape, nb + nl, nr);
            Tensor product = arithmetic(reshape(lhs, lhsShape)).mul(arithmetic(reshape(rhs, rhsShape)));
            return new Labeled(product, concat(batch, leftOnly, rightOnly));
        }

        /** Sums the labels neither the output nor an operand after {@code k} needs. */
        Labeled sumUnneeded(Labeled x, int k) {
            return sum(x, label -> !plan.neededAfter(label, k));
        }

        private Labeled sum(Labeled x, IntPredicate summed) {
            List<Integer> dims = new ArrayList<>(), kept = new ArrayList<>();
            for (int i = 0; i < x.labels.length; i++) (summed.test(x.labels[i]) ? dims : kept).add(i);
            if (dims.isEmpty()) return x;
            int[] keptLabels = new int[kept.size()];
            for (int i = 0; i < keptLabels.length; i++) keptLabels[i] = x.labels[kept.get(i)];
            return new Labeled(arithmetic(x.tensor).sum(toArray(dims), false), keptLabels);
        }

        private Labeled squeeze(Labeled x, int label) {
            int i = indexOf(x.labels, label);
            return new Labeled(x.tensor.squeeze(i), removeIndices(x.labels, i, i));
        }

        /** The tensor with its dimensions in {@code order} (which names each of its labels once). */
        Labeled permute(Labeled x, int[] order) {
            int[] p = new int[order.length];
            for (int i = 0; i < order.length; i++) p[i] = indexOf(x.labels, order[i]);
            boolean identity = true;
            for (int i = 0; i < p.length; i++) identity &= p[i] == i;
            return new Labeled(identity ? x.tensor : x.tensor.permute(p), order);
        }

        private Tensor arithmetic(Tensor t) { return t.to(computeType); }
    }

    private static Tensor reshape(Tensor t, int[] shape) {
        return Arrays.equals(t.shape().dims(), shape) ? t : t.reshape(shape);
    }

    // ================================================================ parsing and checking

    /**
     * The equation resolved against the operands: labels per operand dimension
     * (ellipses expanded), output labels, and for each label the last operand using it.
     */
    private record Plan(String equation, int[][] inputs, int[] output, int[] lastUse, boolean[] inOutput) {

        boolean neededAfter(int label, int k) { return inOutput[label] || lastUse[label] > k; }

        static Plan of(String equation, Tensor[] operands) {
            String eq = equation.replaceAll("\\s", "");
            int arrow = eq.indexOf("->");
            if (arrow >= 0 && eq.indexOf("->", arrow + 2) >= 0) {
                throw new KilnException("einsum: the equation '" + equation + "' contains more than one '->'");
            }
            String lhs = arrow >= 0 ? eq.substring(0, arrow) : eq;
            String[] terms = lhs.split(",", -1);
            if (operands.length == 0) throw new KilnException("einsum: expected at least one operand");
            if (terms.length != operands.length) {
                throw new KilnException("einsum: the equation '" + equation + "' has subscripts for " + terms.length
                        + plural(terms.length, " operand") + " but " + operands.length + " were given");
            }
            int[][] parsed = new int[terms.length][];
            for (int k = 0; k < terms.length; k++) parsed[k] = subscripts(terms[k], "operand " + k, equation);
            int[] out = arrow >= 0 ? subscripts(eq.substring(arrow + 2), "the output", equation) : null;

            int ellipsisRank = 0;
            for (int k = 0; k < operands.length; k++) ellipsisRank = Math.max(ellipsisRank, checkRank(k, terms[k], parsed[k], operands[k]));
            int labelCount = LETTERS + ellipsisRank;
            int[][] inputs = new int[operands.length][];
            for (int k = 0; k < operands.length; k++) inputs[k] = expand(parsed[k], operands[k].rank(), ellipsisRank);
            checkSizes(inputs, operands, labelCount);

            int[] lastUse = new int[labelCount];
            int[] count = new int[labelCount];
            Arrays.fill(lastUse, -1);
            for (int k = 0; k < inputs.length; k++) {
                for (int label : inputs[k]) {
                    lastUse[label] = k;
                    count[label]++;
                }
            }
            int[] output = out != null ? explicitOutput(out, ellipsisRank, lastUse, eq.substring(arrow + 2)) : implicitOutput(count, ellipsisRank);
            boolean[] inOutput = new boolean[labelCount];
            for (int label : output) inOutput[label] = true;
            return new Plan(equation, inputs, output, lastUse, inOutput);
        }

        /** Letters as label numbers and '...' as {@link #ELLIPSIS}. */
        private static int[] subscripts(String term, String where, String equation) {
            List<Integer> out = new ArrayList<>();
            boolean ellipsis = false;
            for (int i = 0; i < term.length(); i++) {
                char ch = term.charAt(i);
                if (ch == '.') {
                    if (!term.startsWith("...", i)) {
                        throw new KilnException("einsum: " + where + " has a '.' that is not part of an ellipsis '...' in '" + equation + "'");
                    }
                    if (ellipsis) throw new KilnException("einsum: " + where + " has more than one ellipsis '...' in '" + equation + "'");
                    ellipsis = true;
                    out.add(ELLIPSIS);
                    i += 2;
                } else if (ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z') {
                    out.add(ch <= 'Z' ? ch - 'A' : 26 + ch - 'a');
                } else {
                    throw new KilnException("einsum: invalid character '" + ch + "' in the equation '" + equation
                            + "'; subscripts are the letters a-z and A-Z, ',' between operands, '->' and '...'");
                }
            }
            return toArray(out);
        }

        /** Checks the operand's rank against its subscripts; returns how many dimensions its ellipsis covers. */
        private static int checkRank(int k, String term, int[] subscripts, Tensor t) {
            boolean ellipsis = indexOf(subscripts, ELLIPSIS) >= 0;
            int named = subscripts.length - (ellipsis ? 1 : 0);
            if (ellipsis ? t.rank() < named : t.rank() != named) {
                throw new KilnShapeException("einsum: operand " + k + " has " + t.rank() + plural(t.rank(), " dimension")
                        + " but the subscripts '" + term + "' name " + (ellipsis ? "at least " : "") + named);
            }
            return ellipsis ? t.rank() - named : 0;
        }

        /** Replaces '...' by the last dimensions of the broadcast ellipsis (labels LETTERS..LETTERS+ellipsisRank-1). */
        private static int[] expand(int[] subscripts, int rank, int ellipsisRank) {
            int[] out = new int[rank];
            int at = 0;
            for (int s : subscripts) {
                if (s != ELLIPSIS) {
                    out[at++] = s;
                    continue;
                }
                int covered = rank - (subscripts.length - 1);
                for (int j = 0; j < covered; j++) out[at++] = LETTERS + ellipsisRank - covered + j;
            }
            return out;
        }

        /** Repeated labels in an operand need equal sizes; across operands sizes must agree or be 1. */
        private static void checkSizes(int[][] inputs, Tensor[] operands, int labelCount) {
            int[] size = new int[labelCount], from = new int[labelCount];
            Arrays.fill(size, 1);
            Arrays.fill(from, -1);
            for (int k = 0; k < inputs.length; k++) {
                int[] dims = operands[k].shape().dims();
                for (int i = 0; i < dims.length; i++) {
                    int label = inputs[k][i];
                    int first = indexOf(inputs[k], label);
                    if (first < i && dims[first] != dims[i]) {
                        throw new KilnShapeException("einsum: label '" + letter(label) + "' is repeated in operand " + k
                                + " but its dimensions " + first + " and " + i + " have different sizes (" + dims[first]
                                + " and " + dims[i] + ") in shape " + operands[k].shape());
                    }
                    if (dims[i] == 1 || dims[i] == size[label]) continue;
                    if (size[label] != 1) {
                        throw label < LETTERS
                                ? new KilnShapeException("einsum: label '" + letter(label) + "' has size " + size[label]
                                        + " in operand " + from[label] + " but " + dims[i] + " in operand " + k)
                                : new KilnShapeException("einsum: the dimensions covered by '...' do not broadcast: "
                                        + ellipsisShape(inputs[from[label]], operands[from[label]]) + " in operand " + from[label]
                                        + " and " + ellipsisShape(inputs[k], operands[k]) + " in operand " + k);
                    }
                    size[label] = dims[i];
                    from[label] = k;
                }
            }
        }

        private static Shape ellipsisShape(int[] labels, Tensor t) {
            List<Integer> dims = new ArrayList<>();
            for (int i = 0; i < labels.length; i++) if (labels[i] >= LETTERS) dims.add(t.size(i));
            return Shape.of(toArray(dims));
        }

        private static int[] explicitOutput(int[] subscripts, int ellipsisRank, int[] lastUse, String text) {
            List<Integer> out = new ArrayList<>();
            for (int s : subscripts) {
                if (s == ELLIPSIS) {
                    for (int j = 0; j < ellipsisRank; j++) out.add(LETTERS + j);
                    continue;
                }
                if (lastUse[s] < 0) {
                    throw new KilnException("einsum: output label '" + letter(s) + "' does not appear in any operand's subscripts");
                }
                if (out.contains(s)) {
                    throw new KilnException("einsum: output label '" + letter(s) + "' appears more than once in the output '" + text + "'");
                }
                out.add(s);
            }
            return toArray(out);
        }

        /** The ellipsis dimensions, then the labels used exactly once, in ASCII order. */
        private static int[] implicitOutput(int[] count, int ellipsisRank) {
            List<Integer> out = new ArrayList<>();
            for (int j = 0; j < ellipsisRank; j++) out.add(LETTERS + j);
            for (int label = 0; label < LETTERS; label++) if (count[label] == 1) out.add(label);
            return toArray(out);
        }
    }

    // ================================================================ small helpers

    private static char letter(int label) { return (char) (label < 26 ? 'A' + label : 'a' + label - 26); }

    private static String plural(int n, String noun) { return n == 1 ? noun : noun + "s"; }

    private static int indexOf(int[] a, int v) {
        for (int i = 0; i < a.length; i++) if (a[i] == v) return i;
        return -1;
    }

    /** The first two positions holding the same label, or null. */
    private static int[] repeatedPair(int[] labels) {
        for (int i = 0; i < labels.length; i++) {
            for (int j = i + 1; j < labels.length; j++) if (labels[i] == labels[j]) return new int[] {i, j};
        }
        return null;
    }

    private static int[] removeIndices(int[] a, int i, int j) {
        int[] out = new int[a.length - (i == j ? 1 : 2)];
        for (int s = 0, d = 0; s < a.length; s++) if (s != i && s != j) out[d++] = a[s];
        return out;
    }

    private static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] out = new int[n];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    private static int product(Tensor t, int from, int to) {
        long p = 1;
        for (int i = from; i < to; i++) p *= t.size(i);
        return Math.toIntExact(p);
    }

    private static int[] toArray(List<Integer> list) {
        return list.stream().mapToInt(Integer::intValue).toArray();
    }
}
