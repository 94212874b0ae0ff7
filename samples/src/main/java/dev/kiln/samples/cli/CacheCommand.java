package dev.kiln.samples.cli;

import dev.kiln.cache.CacheConfig;
import dev.kiln.cache.CacheDirectory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "cache", mixinStandardHelpOptions = true,
        description = {"Inspects the persistent kernel cache: stats (entries, bytes, cap), ls (one line per entry),"
                + " verify (checks every entry's checksums and removes bad ones), clear (removes every entry).",
                "The directory is --dir, else kiln.cache.dir, else KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln or ~/.cache/kiln."})
final class CacheCommand implements Callable<Integer> {

    enum Action { STATS, LS, VERIFY, CLEAR }

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "stats|ls|verify|clear", description = "What to do.")
    Action action;

    @Option(names = "--dir", paramLabel = "DIR", description = "The cache directory.")
    Path dir;

    @Override
    public Integer call() {
        Path root = dir != null ? dir : CacheConfig.fromEnvironment().directory().orElseThrow(() ->
                new ParameterException(spec.commandLine(), "the disk cache is off (KILN_CACHE=off); pass --dir DIR"));
        CacheDirectory cache = CacheDirectory.open(root);
        PrintWriter out = spec.commandLine().getOut();
        switch (action) {
            case STATS -> {
                var s = cache.stats();
                out.printf(Locale.ROOT, "%s: %d entries, %s of %s%s%n", s.root(), s.entries(), bytes(s.bytes()), bytes(s.capBytes()),
                        s.leastRecentlyUsed().map(t -> ", least recently used " + t).orElse(""));
                out.printf(Locale.ROOT, "disk lookups by all processes: %d hits, %d misses, hit rate %.1f%%%n",
                        s.diskHits(), s.diskMisses(), 100 * s.hitRate());
            }
            case LS -> {
                for (var e : cache.list()) {
                    out.printf(Locale.ROOT, "%s  %10s  last used %s  %s  %s%n", e.key(), bytes(e.fileBytes()), e.lastUsed(), describe(e), e.file());
                }
            }
            case VERIFY -> {
                var r = cache.verify();
                for (var p : r.removed()) out.println("removed " + p.file() + ": " + p.reason());
                out.printf(Locale.ROOT, "%d entries checked, %d valid, %d removed (%s freed)%n",
                        r.checked(), r.valid(), r.removed().size(), bytes(r.bytesFreed()));
            }
            case CLEAR -> {
                var r = cache.clear();
                out.printf(Locale.ROOT, "removed %d entries (%s)%n", r.entriesRemoved(), bytes(r.bytesFreed()));
            }
        }
        out.flush();
        return 0;
    }

    /** What an entry holds, from its manifest: a module's proxy class, or a program with the graph and inputs it serves. */
    static String describe(CacheDirectory.EntryInfo e) {
        if (e.problem().isPresent()) return "unreadable: " + e.problem().get();
        if ("module proxy".equals(e.metadata().get("kind"))) return "proxy class of module " + e.metadata().get("module");
        String graph = e.components().getOrDefault("graph", "");
        String what = e.metadata().containsKey("samples")
                ? "program for every size (" + e.metadata().get("samples") + " samples)" : "program";
        return what + " of graph " + graph.substring(0, Math.min(16, graph.length())) + " for " + e.components().getOrDefault("inputs", "?");
    }

    private static String bytes(long b) {
        if (b < 1024) return b + " B";
        if (b < 1 << 20) return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
        if (b < 1 << 30) return String.format(Locale.ROOT, "%.1f MiB", b / (1024.0 * 1024));
        return String.format(Locale.ROOT, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    }
}
