package dev.kiln.samples.cli;

import dev.kiln.samples.conformance.ConformanceRunner;
import dev.kiln.samples.conformance.ConformanceRunner.Mode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "conformance", mixinStandardHelpOptions = true,
        description = {
                "Runs the reference cases found under DIR... (every directory holding a case.json, searched recursively)"
                        + " and compares Kiln's outputs with the expected arrays.",
                "Prints one line per case and mode: PASS, FAIL or SKIP, the case, the mode and why; then the counts.",
                "Exit status: 0 when nothing failed, 1 otherwise."})
final class ConformanceCommand implements Callable<Integer> {

    enum ModeOption {
        EAGER(List.of(Mode.EAGER)), COMPILED(List.of(Mode.COMPILED)), BOTH(List.of(Mode.EAGER, Mode.COMPILED));

        final List<Mode> modes;

        ModeOption(List<Mode> modes) { this.modes = modes; }
    }

    @Spec
    CommandSpec spec;

    @Option(names = "--mode", paramLabel = "eager|compiled|both", defaultValue = "both",
            description = "Run the cases eagerly, compiled, or both (default: both).")
    ModeOption mode;

    @Parameters(paramLabel = "DIR", arity = "1..*", description = "Directories to search for cases.")
    List<Path> dirs;

    @Override
    public Integer call() throws IOException {
        for (Path d : dirs) {
            if (!Files.isDirectory(d)) throw new ParameterException(spec.commandLine(), "not a directory: " + d);
        }
        ConformanceRunner.Summary s = new ConformanceRunner(mode.modes).run(dirs, spec.commandLine().getOut());
        if (s.total() == 0) {
            // A run that checked nothing must not look like a success.
            spec.commandLine().getErr().println("kiln conformance: no cases (directories with case.json) under " + dirs);
            return 1;
        }
        return s.exitCode();
    }
}
