package dev.kiln.samples.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One measured figure of a workload, printed as a JSON line. {@code gbps} and
 * {@code gflops} are null where the workload does not define them; so is {@code firstCallMs}
 * (the first call in a fresh JVM, compilation included) unless it was measured.
 * {@code figures} holds a workload's further named numbers (DRAM bytes, memory), printed
 * after them in order.
 */
public record BenchResult(String workload, String name, String mode, Timing.Stats stats, Double gbps, Double gflops,
                          boolean oobChecks, int threads, Double firstCallMs, Map<String, Double> figures) {

    public BenchResult {
        figures = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(figures));
    }

    public BenchResult(String workload, String name, String mode, Timing.Stats stats, Double gbps, Double gflops,
                       boolean oobChecks, int threads) {
        this(workload, name, mode, stats, gbps, gflops, oobChecks, threads, null, Map.of());
    }

    /** This result with one more named figure. */
    public BenchResult with(String figure, double value) {
        Map<String, Double> more = new LinkedHashMap<>(figures);
        more.put(figure, value);
        return new BenchResult(workload, name, mode, stats, gbps, gflops, oobChecks, threads, firstCallMs, more);
    }

    BenchResult withFirstCallMs(double ms) {
        return new BenchResult(workload, name, mode, stats, gbps, gflops, oobChecks, threads, ms, figures);
    }

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
        n.put("median_ms", round(stats.medianMs()));
        n.put("min_ms", round(stats.minMs()));
        n.put("max_ms", round(stats.maxMs()));
        n.put("gbps", gbps == null ? null : round(gbps));
        n.put("gflops", gflops == null ? null : round(gflops));
        n.put("oob_checks", oobChecks);
        n.put("threads", threads);
        n.put("first_call_ms", firstCallMs == null ? null : round(firstCallMs));
        // Byte counts are exact integers; other figures get the same rounding as the rates.
        figures.forEach((k, v) -> {
            if (v == Math.rint(v) && Math.abs(v) < 0x1p53) n.put(k, v.longValue());
            else n.put(k, round(v));
        });
        return n.toString();
    }

    /** Four significant digits: more would be noise on a shared machine, fewer would hide small figures. */
    private static double round(double v) {
        return new BigDecimal(v).round(new MathContext(4)).doubleValue();
    }
}
