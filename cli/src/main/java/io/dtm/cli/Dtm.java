package io.dtm.cli;

import io.dtm.engine.EngineRuntime;
import java.util.List;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The single {@code dtm} launcher. Each subcommand is registered only when the classes of its role are on the class
 * path, so one launcher jar runs on any role's class path alone: the engine's for {@code golden}, {@code eval} and
 * {@code bench}, the worker's, the aggregator's, the publisher's, or all of them plus the dev-only local stack
 * ({@code broker}, {@code demo}) as {@code ./dtm} has it.
 */
@Command(name = "dtm", mixinStandardHelpOptions = true, version = "dtm 0.1.0",
        description = "Divergent Token Metrics: which parts of an LLM can be pruned or quantized, and in what order.")
public final class Dtm {

    private static final String ENGINE = "io.dtm.engine.DivergenceEngine";
    private static final String WORKER = "io.dtm.worker.TrialWorker";
    private static final String PUBLISHER = "io.dtm.producers.SweepPublisher";
    private static final String AGGREGATOR = "io.dtm.aggregator.AggregatorApp";
    private static final String TOPICS = "io.dtm.schemas.Topics";
    private static final String LOCAL_STACK = "io.dtm.local.LocalPipeline";

    /**
     * A subcommand and the classes it runs on. The command is built only when they are present: picocli reads its
     * fields and methods, whose types may live in them.
     */
    private record Subcommand(Supplier<Object> command, List<String> needs) {
        Subcommand(Supplier<Object> command, String... needs) {
            this(command, List.of(needs));
        }
    }

    /** In the order {@code dtm --help} lists them; lambdas, so that no command class loads before it is wanted. */
    private static final List<Subcommand> SUBCOMMANDS = List.of(
            new Subcommand(() -> new DemoCommand(), LOCAL_STACK, ENGINE, PUBLISHER, AGGREGATOR),
            new Subcommand(() -> new GoldenCommand(), ENGINE),
            new Subcommand(() -> new EvalCommand(), ENGINE),
            new Subcommand(() -> new BenchCommand(), ENGINE),
            new Subcommand(() -> new ApplyCommand(), ENGINE),
            new Subcommand(() -> new BrokerCommand(), LOCAL_STACK),
            new Subcommand(() -> new TopicsCommand(), TOPICS),
            new Subcommand(() -> new AclsCommand(), TOPICS, PUBLISHER),
            new Subcommand(() -> new SweepCommand(), PUBLISHER, ENGINE),
            new Subcommand(() -> new WorkerCommand(), WORKER),
            new Subcommand(() -> new AggregatorCommand(), AGGREGATOR));

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The command line with dtm's error handling: a failure prints one line naming the problem and exits 2. */
    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Dtm());
        for (Subcommand subcommand : SUBCOMMANDS) {
            if (subcommand.needs().stream().allMatch(Dtm::present)) {
                cli.addSubcommand(subcommand.command().get());
            }
        }
        cli.setExecutionStrategy(Dtm::execute);
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            commandLine.getErr().println("dtm: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
            if (System.getenv("DTM_DEBUG") != null) {
                e.printStackTrace(commandLine.getErr());
            }
            return 2;
        });
        return cli;
    }

    /**
     * Runs the parsed command after the JVM-wide settings: the command's own first ({@link JvmSetup}), as the engine's
     * create the first logger, and the engine's before anything can load DJL.
     */
    private static int execute(CommandLine.ParseResult parsed) {
        List<CommandLine> chain = parsed.asCommandLineList();
        if (chain.get(chain.size() - 1).getCommand() instanceof JvmSetup setup) {
            setup.setUpJvm();
        }
        if (present(ENGINE)) {
            EngineRuntime.init();
        }
        return new CommandLine.RunLast().execute(parsed);
    }

    private static boolean present(String className) {
        try {
            Class.forName(className, false, Dtm.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }
}
