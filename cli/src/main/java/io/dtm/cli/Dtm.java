package io.dtm.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The single {@code dtm} launcher: engine commands, the pipeline's services, and the one-command demo. */
@Command(name = "dtm", mixinStandardHelpOptions = true, version = "dtm 0.1.0",
        description = "Divergent Token Metrics: which parts of an LLM can be pruned or quantized, and in what order.",
        subcommands = {DemoCommand.class, GoldenCommand.class, EvalCommand.class, BenchCommand.class, ApplyCommand.class,
                BrokerCommand.class, TopicsCommand.class, AclsCommand.class, SweepCommand.class, WorkerCommand.class,
                AggregatorCommand.class})
public final class Dtm {

    static {
        // DJL must never reach the network (it probes 169.254.169.254 otherwise)
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The command line with dtm's error handling: a failure prints one line naming the problem and exits 2. */
    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Dtm());
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            commandLine.getErr().println("dtm: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
            if (System.getenv("DTM_DEBUG") != null) {
                e.printStackTrace(commandLine.getErr());
            }
            return 2;
        });
        return cli;
    }
}
