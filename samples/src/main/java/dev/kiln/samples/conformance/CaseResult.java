package dev.kiln.samples.conformance;

/** The verdict on one case in one mode, printed as {@code VERDICT CASE MODE[ - detail]}. */
public record CaseResult(String caseName, ConformanceRunner.Mode mode, Verdict verdict, String detail) {

    public enum Verdict { PASS, FAIL, SKIP }

    public static CaseResult pass(String caseName, ConformanceRunner.Mode mode) {
        return new CaseResult(caseName, mode, Verdict.PASS, null);
    }

    public String line() {
        String base = verdict + " " + caseName + " " + mode.label();
        // One line per result, whatever an exception message contains.
        return detail == null ? base : base + " - " + detail.replaceAll("\\s*\\R\\s*", " ");
    }
}
