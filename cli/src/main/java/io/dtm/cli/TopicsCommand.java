package io.dtm.cli;

import io.dtm.schemas.Topic;
import io.dtm.schemas.Topics;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "topics", mixinStandardHelpOptions = true, description = "The pipeline's topics.",
        subcommands = TopicsCommand.Create.class)
final class TopicsCommand {

    @Command(name = "create", mixinStandardHelpOptions = true,
            description = "Create the pipeline's topics on a cluster (compacted where the state is the latest value); "
                    + "idempotent. Exits 1 if an existing topic has the wrong cleanup policy.")
    static final class Create implements Callable<Integer> {

        @Mixin
        ConnectionMixin connection;

        @Option(names = "--partitions",
                description = "Partitions of every topic (default: " + Topics.WORK_PARTITIONS + " for dtm.trials, "
                        + Topics.PARTITIONS + " for the others).")
        Integer partitions;

        @Option(names = "--trials-partitions",
                description = "Partitions of dtm.trials, which cap how many workers are busy at once (default: "
                        + "--partitions if given, else " + Topics.WORK_PARTITIONS + ").")
        Integer trialsPartitions;

        @Option(names = "--retention-ms", defaultValue = "" + Topics.RETENTION_MS,
                description = "How long the topics that are not compacted keep a record; -1: forever. A trial left "
                        + "unconsumed longer is lost and its round never ends (default: ${DEFAULT-VALUE}).")
        long retentionMs;

        @Option(names = "--replication-factor", defaultValue = "1",
                description = "Replicas per partition; use 3 on a production cluster (default: ${DEFAULT-VALUE}).")
        short replicationFactor;

        @Override
        public Integer call() {
            if (retentionMs < -1) {
                throw new IllegalArgumentException("--retention-ms must be -1 (forever) or a number of ms, got "
                        + retentionMs);
            }
            Map<String, Object> admin = connection.clientProps();
            List<String> created = Topics.create(admin, this::partitionsOf, Duration.ofMillis(retentionMs),
                    replicationFactor);
            for (Topic<String, ?> topic : Topics.ALL) {
                System.out.printf("%-18s %s%s%n", topic.name(), created.contains(topic.name()) ? "created" : "exists",
                        topic.compacted() ? " (compacted)" : "");
            }
            List<String> problems = Topics.misconfigured(admin);
            problems.forEach(problem -> System.err.println("dtm: " + problem));
            return problems.isEmpty() ? 0 : 1;
        }

        private int partitionsOf(Topic<String, ?> topic) {
            if (topic == Topics.TRIALS && trialsPartitions != null) {
                return trialsPartitions;
            }
            return partitions != null ? partitions : topic.partitions();
        }
    }
}
