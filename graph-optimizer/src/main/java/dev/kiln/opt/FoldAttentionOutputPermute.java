package dev.kiln.opt;

import dev.kiln.ir.Graph;
import dev.kiln.ir.Node;
import dev.kiln.opt.SingleOpFormation.Match;
import dev.kiln.ops.Op;

import java.util.List;

/**
 * Folds the permute that follows multi-head attention into the attention's output layout:
 * {@code permute(attention(q, k, v), [..., 2, 1, 3])}, the heads moved behind the queries
 * (the {@code o.transpose(1, 2)} before a transformer's output projection), becomes
 * attention with a {@linkplain Op.Attention#transposedOutput transposed output}, which the
 * kernel writes row by row where the permute would have put them. The permute's result is
 * then contiguous, so the reshape that joins the heads is a view and the output projection
 * reads the rows in place, where before the permuted rows were gathered into contiguous
 * memory first. The same values, bit for bit: only where each row is stored changes.
 *
 * <p>Folded: {@code scaled_dot_product_attention} (as the kernel-level {@code attention}
 * with the same options) and {@code attention} without a transposed output, read only by
 * such a permute of rank 3 or more that swaps dimensions -3 and -2 and keeps the others.
 */
public final class FoldAttentionOutputPermute implements GraphPass {
    @Override
    public String name() { return "fold-attention-output-permute"; }

    @Override
    public PassResult run(Graph graph) {
        return SingleOpFormation.run(graph, (g, uses, node) -> {
            if (!(node.op() instanceof Op.Permute p) || !swapsHeadsAndQueries(p.dims())) return null;
            Node.Apply attention = uses.singleUseProducer(node.inputs().get(0));
            if (attention == null) return null;
            Op.Attention folded = switch (attention.op()) {
                case Op.ScaledDotProductAttention s -> new Op.Attention(s.causal(), 0, s.scale(), 0, s.enableGqa(), s.hasMask(), 0, true);
                case Op.Attention a when !a.transposedOutput() -> new Op.Attention(a.causal(), a.causalOffset(), a.scale(), a.softcap(),
                        a.enableGqa(), a.hasMask(), a.partitionSize(), true);
                default -> null;
            };
            if (folded == null) return null;
            return new Match(folded, attention.inputs(), "the permute of %" + attention.id() + " (" + attention.op().name()
                    + ") is its output written transposed");
        });
    }

    /** [0, 1, ..., r-4, r-2, r-3, r-1]: dimensions -3 and -2 swapped, the rest in place. */
    static boolean swapsHeadsAndQueries(List<Integer> dims) {
        int r = dims.size();
        if (r < 3) return false;
        for (int i = 0; i < r; i++) {
            int want = i == r - 3 ? r - 2 : i == r - 2 ? r - 3 : i;
            if (dims.get(i) != want) return false;
        }
        return true;
    }
}
