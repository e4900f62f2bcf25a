package io.dtm.cli;

import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.avro.SweepRequest;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "sweep", mixinStandardHelpOptions = true, description = "Sweeps.", subcommands = SweepCommand.Start.class)
final class SweepCommand {

    @Command(name = "start", mixinStandardHelpOptions = true, description = "Publish a sweep and its first round of trials (one transaction).")
    static final class Start implements Callable<Integer> {

        @Mixin
        ConnectionMixin connection;

        @Mixin
        SweepOptions sweep;

        @Override
        public Integer call() throws Exception {
            SweepRequest request = sweep.request();
            SweepPublisher.Summary summary = new SweepPublisher(connection.clientProps(), connection.registry())
                    .publish(request);
            if (request.getAllocation() == null) {
                System.out.printf("sweep %s: %d trials in %d shards published for round 0 of %d%n",
                        summary.sweepId(), summary.trials(), summary.shards(), request.getRounds());
            } else {
                System.out.printf("sweep %s: %d trials in %d shards published for iteration 1 of %d and the 2"
                                + " baselines%n", summary.sweepId(), summary.trials(), summary.shards(),
                        request.getAllocation().getIterations());
            }
            summary.notPlanned().forEach(n -> System.out.println("  never planned: " + n));
            return 0;
        }
    }
}
