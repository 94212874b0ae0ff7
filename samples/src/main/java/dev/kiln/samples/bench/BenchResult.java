package dev.kiln.samples.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One measured figure of a workload, printed as a JSON line. {@code gbps} and
 * {@code gflops} are null where the workload does not define them.
 */
public record BenchResult(String workload, String name, String mode, Timing.Stats stats, Double gbps, Double gflops,
                          boolean oobChecks, int threads) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Throughput in units per second (bytes or flops, in billions) at the median time. */
    static double perSecondAtMedian(double units, Timing.Stats stats) {
        return units / (stats.medianMs() / 1e3) / 1e9;
    }

    public String toJson() {
        ObjectNode n = JSON.createObjectNode();
        n.put("workload", workload);
        n.put("name", name);
        n.put("mode", mode);
        n.put("median_ms", round(stats.medianMs(), 3));
        n.put("min_ms", round(stats.minMs(), 3));
        n.put("max_ms", round(stats.maxMs(), 3));
        n.put("gbps", gbps == null ? null : round(gbps, 2));
        n.put("gflops", gflops == null ? null : round(gflops, 2));
        n.put("oob_checks", oobChecks);
        n.put("threads", threads);
        return n.toString();
    }

    private static double round(double v, int decimals) {
        double scale = Math.pow(10, decimals);
        return Math.round(v * scale) / scale;
    }
}
