package io.dtm.cli;

import io.dtm.local.EmbeddedCluster;
import io.dtm.schemas.Topics;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "topics", mixinStandardHelpOptions = true, description = "The pipeline's topics.",
        subcommands = TopicsCommand.Create.class)
final class TopicsCommand {

    @Command(name = "create", mixinStandardHelpOptions = true,
            description = "Create the pipeline's topics on a cluster (compacted where the state is the latest value); idempotent.")
    static final class Create implements Callable<Integer> {

        @Mixin
        ConnectionMixin connection;

        @Option(names = "--partitions", defaultValue = "8",
                description = "Partitions per topic; those of dtm.trials cap how many workers are busy at once (default: ${DEFAULT-VALUE}).")
        int partitions;

        @Option(names = "--replication-factor", defaultValue = "1",
                description = "Replicas per partition; use 3 on a production cluster (default: ${DEFAULT-VALUE}).")
        short replicationFactor;

        @Override
        public Integer call() {
            List<String> created = EmbeddedCluster.createTopics(connection.clientProps(), partitions, replicationFactor);
            for (String topic : Topics.ALL) {
                System.out.printf("%-18s %s%s%n", topic, created.contains(topic) ? "created" : "exists",
                        Topics.COMPACTED.contains(topic) ? " (compacted)" : "");
            }
            return 0;
        }
    }
}
