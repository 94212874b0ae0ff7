package dev.kiln.samples.conformance;

import dev.kiln.samples.conformance.CaseResult.Verdict;
import dev.kiln.samples.conformance.ConformanceCase.CaseFile;
import dev.kiln.samples.conformance.ConformanceCase.InvalidCaseException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Npy;
import dev.kiln.tensor.Tensor;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * Runs conformance cases (directories holding a {@code case.json}, see the case format)
 * through Kiln and compares the outputs with the expected arrays.
 *
 * <p>Each case gives PASS, FAIL (a wrong output, or an exception raised by Kiln) or
 * SKIP (a dtype, op or attribute Kiln does not have, or a mode that does not exist
 * yet); nothing a case contains makes the runner itself stop.
 */
public final class ConformanceRunner {

    /** How a case is executed. */
    public enum Mode {
        EAGER, COMPILED;

        public String label() { return name().toLowerCase(Locale.ROOT); }
    }

    /** Counts of one run; the process should exit non-zero when anything failed. */
    public record Summary(int passed, int failed, int skipped) {
        public int total() { return passed + failed + skipped; }
        public int exitCode() { return failed > 0 ? 1 : 0; }
        public String line() { return passed + " passed, " + failed + " failed, " + skipped + " skipped"; }
    }

    private final List<Mode> modes;

    public ConformanceRunner(List<Mode> modes) {
        if (modes.isEmpty()) throw new IllegalArgumentException("at least one mode is needed");
        this.modes = List.copyOf(modes);
    }

    /**
     * Runs every case under {@code roots}, printing one line per case and mode, sorted by
     * case name, then the closing counts line.
     */
    public Summary run(List<Path> roots, PrintWriter out) throws IOException {
        int passed = 0, failed = 0, skipped = 0;
        for (Path dir : findCases(roots)) {
            for (Mode mode : modes) {
                CaseResult r = run(dir, mode);
                out.println(r.line());
                out.flush();
                switch (r.verdict()) {
                    case PASS -> passed++;
                    case FAIL -> failed++;
                    case SKIP -> skipped++;
                }
            }
        }
        Summary s = new Summary(passed, failed, skipped);
        out.println(s.line());
        out.flush();
        return s;
    }

    /** Every directory holding a case descriptor under the given paths (searched recursively), sorted by case name. */
    public static List<Path> findCases(List<Path> roots) throws IOException {
        List<Path> found = new ArrayList<>();
        for (Path root : roots) {
            if (!Files.isDirectory(root)) throw new NoSuchFileException(root.toString(), null, "not a directory");
            try (Stream<Path> walk = Files.walk(root)) {
                walk.filter(p -> p.getFileName() != null && p.getFileName().toString().equals(ConformanceCase.DESCRIPTOR))
                        .filter(Files::isRegularFile)
                        .map(p -> p.toAbsolutePath().getParent())
                        .distinct()
                        .forEach(found::add);
            }
        }
        found.sort(Comparator.comparing((Path p) -> p.getFileName().toString()).thenComparing(Path::toString));
        return found;
    }

    /** Runs one case directory in one mode. */
    public CaseResult run(Path caseDir, Mode mode) {
        String name = caseDir.getFileName().toString();
        try {
            CaseResult r = runCase(ConformanceCase.load(caseDir), mode);
            String defect = KnownDataDefects.reason(name);
            return r.verdict() == Verdict.FAIL && defect != null
                    ? new CaseResult(name, mode, Verdict.SKIP, "known defect in the case data: " + defect + " (Kiln's result: " + r.detail() + ")")
                    : r;
        } catch (InvalidCaseException e) {
            return new CaseResult(name, mode, Verdict.FAIL, e.getMessage());
        } catch (IOException e) {
            return new CaseResult(name, mode, Verdict.FAIL, ConformanceCase.DESCRIPTOR + ": " + describe(e));
        }
    }

    private CaseResult runCase(ConformanceCase c, Mode mode) {
        List<Tensor> inputs = new ArrayList<>(), expected = new ArrayList<>();
        try {
            for (CaseFile f : c.inputs()) inputs.add(f == null ? null : read(f));
            for (CaseFile f : c.outputs()) expected.add(read(f));
        } catch (KilnTypeException e) {
            return new CaseResult(c.name(), mode, Verdict.SKIP, e.getMessage());
        } catch (CaseFileException e) {
            return new CaseResult(c.name(), mode, Verdict.FAIL, e.getMessage());
        }

        List<Tensor> actual;
        try {
            actual = mode == Mode.EAGER ? OnnxOps.run(new OnnxNode(c.op(), c.attributes(), inputs)) : CompiledCase.run(c, inputs);
        } catch (UnsupportedCaseException e) {
            return new CaseResult(c.name(), mode, Verdict.SKIP, e.getMessage());
        } catch (RuntimeException | AssertionError | StackOverflowError | LinkageError e) {
            return new CaseResult(c.name(), mode, Verdict.FAIL, describe(e));
        }
        if (actual.size() < expected.size()) {
            return new CaseResult(c.name(), mode, Verdict.FAIL,
                    c.op() + " gave " + actual.size() + " outputs, the case expects " + expected.size());
        }
        for (int i = 0; i < expected.size(); i++) {
            String mismatch;
            try {
                mismatch = OutputComparison.mismatch(actual.get(i), expected.get(i));
            } catch (RuntimeException e) {
                mismatch = describe(e);
            }
            if (mismatch != null) {
                String which = expected.size() > 1 ? "output " + i + " (" + c.outputs().get(i).name() + "): " : "";
                return new CaseResult(c.name(), mode, Verdict.FAIL, which + mismatch);
            }
        }
        return CaseResult.pass(c.name(), mode);
    }

    /** Reads an array file; an unsupported dtype surfaces as {@link KilnTypeException}, anything else as {@link CaseFileException}. */
    private static Tensor read(CaseFile f) throws CaseFileException {
        try (InputStream in = Files.newInputStream(f.path())) {
            return Npy.read(in);
        } catch (KilnTypeException e) {
            throw e;
        } catch (NoSuchFileException e) {
            throw new CaseFileException(f.path().getFileName() + ": no such file");
        } catch (IOException | RuntimeException e) {
            throw new CaseFileException(f.path().getFileName() + ": " + describe(e));
        }
    }

    private static String describe(Throwable e) {
        String message = e.getMessage();
        return e.getClass().getSimpleName() + (message == null ? "" : ": " + message);
    }

    /** An array file that is missing or unreadable. */
    private static final class CaseFileException extends Exception {
        CaseFileException(String message) { super(message); }
    }
}
