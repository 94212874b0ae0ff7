package dev.kiln.samples.conformance;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * Cases whose reference data contradicts itself, with the evidence. Such a case is run
 * as usual: if Kiln's result fails against it, it is reported as SKIP naming the defect;
 * once the data is corrected it passes and should leave the list.
 */
final class KnownDataDefects {
    private static final Map<String, String> DEFECTS = load();

    private KnownDataDefects() {}

    /** Why a case's data is known to be wrong, or null. */
    static String reason(String caseName) { return DEFECTS.get(caseName); }

    private static Map<String, String> load() {
        Map<String, String> out = new HashMap<>();
        try (InputStream in = KnownDataDefects.class.getResourceAsStream("known-data-defects.txt")) {
            if (in == null) return out;
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line; (line = r.readLine()) != null; ) {
                if (line.isBlank() || line.startsWith("#")) continue;
                int tab = line.indexOf('\t');
                out.put(line.substring(0, tab).trim(), line.substring(tab + 1).trim());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }
}
