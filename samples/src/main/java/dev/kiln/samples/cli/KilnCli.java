package dev.kiln.samples.cli;

import jdk.incubator.vector.FloatVector;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/** The {@code kiln} command line: {@code kiln demo}, {@code kiln conformance DIR...}, {@code kiln bench W1}. */
@Command(name = "kiln", mixinStandardHelpOptions = true, versionProvider = KilnCli.Version.class,
        description = "Kiln: eager tensors for Java on a virtual NPU, and Kiln.compile to trace them into graphs.",
        footer = {"", "The kiln launcher also runs the whole test suite: kiln test (mvn -B verify, then the conformance"
                + " cases in ../shared/conformance when that folder exists)."},
        subcommands = {DemoCommand.class, ConformanceCommand.class, BenchCommand.class, ExplainCommand.class, CacheCommand.class,
                CommandLine.HelpCommand.class})
public final class KilnCli implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "Missing command: choose demo, conformance, bench, explain or cache");
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /**
     * The configured command line. Errors raised by a command end it with a one-line
     * message on stderr and exit status 1; usage errors print the usage and give 2.
     */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new KilnCli());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            cmd.getErr().println("kiln " + cmd.getCommandName() + ": " + e.getClass().getSimpleName() + ": " + e.getMessage());
            cmd.getErr().flush();
            return 1;
        });
        return cl;
    }

    /** The project version, the Java runtime and the vector width the kernels will use. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            Properties p = new Properties();
            try (InputStream in = KilnCli.class.getResourceAsStream("version.properties")) {
                if (in != null) p.load(in);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return new String[] {
                    "kiln " + p.getProperty("version", "(unknown version)"),
                    "Java " + Runtime.version() + " (" + System.getProperty("java.vm.name") + ")",
                    "vector species: " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit, "
                            + FloatVector.SPECIES_PREFERRED.length() + " float lanes"};
        }
    }
}
