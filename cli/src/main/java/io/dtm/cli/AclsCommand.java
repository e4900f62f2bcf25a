package io.dtm.cli;

import io.dtm.aggregator.AggregatorApp;
import io.dtm.worker.TrialWorker;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.resource.PatternType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "acls", mixinStandardHelpOptions = true, description = "The pipeline's Kafka ACLs.",
        subcommands = AclsCommand.Create.class)
final class AclsCommand {

    @Command(name = "create", mixinStandardHelpOptions = true,
            description = "Allow each pipeline principal what it needs and nothing more, on a cluster with an "
                    + "authorizer (run it with an admin's --client-config); idempotent.")
    static final class Create implements Callable<Integer> {

        @Mixin
        ConnectionMixin connection;

        @Option(names = "--producer", required = true, description = "Principal of `sweep start`, e.g. User:sweeper.")
        String producer;

        @Option(names = "--worker", required = true, description = "Principal of the workers, e.g. User:worker.")
        String worker;

        @Option(names = "--aggregator", required = true,
                description = "Principal of the aggregator, e.g. User:aggregator.")
        String aggregator;

        @Option(names = "--worker-group", defaultValue = TrialWorker.Config.DEFAULT_GROUP,
                description = "The workers' consumer group (default: ${DEFAULT-VALUE}).")
        String workerGroup;

        @Option(names = "--application-id", defaultValue = AggregatorApp.DEFAULT_APPLICATION_ID,
                description = "The aggregator's application id (default: ${DEFAULT-VALUE}).")
        String applicationId;

        @Override
        public Integer call() throws Exception {
            List<AclBinding> acls = new PipelineAcls(producer, worker, aggregator, workerGroup, applicationId)
                    .bindings();
            try (Admin admin = Admin.create(connection.clientProps())) {
                admin.createAcls(acls).all().get(60, TimeUnit.SECONDS);
            }
            for (AclBinding acl : acls) {
                System.out.printf("allow %-20s %-10s %s %s%s%n", acl.entry().principal(), acl.entry().operation(),
                        acl.pattern().resourceType(), acl.pattern().name(),
                        acl.pattern().patternType() == PatternType.PREFIXED ? "*" : "");
            }
            return 0;
        }
    }
}
