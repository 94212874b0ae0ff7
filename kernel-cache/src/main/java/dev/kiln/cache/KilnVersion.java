package dev.kiln.cache;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/** The Kiln version recorded in entry manifests (from the build, via a filtered resource). */
public final class KilnVersion {
    public static final String VALUE = load();

    private KilnVersion() {}

    private static String load() {
        try (InputStream in = KilnVersion.class.getResourceAsStream("kiln-version.properties")) {
            if (in == null) throw new IllegalStateException("kiln-version.properties is missing from the kernel-cache jar");
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
