package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.ScheduleView;
import io.dtm.local.EmbeddedCluster;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.http.Health;
import io.dtm.schemas.registry.SchemaRegistryClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8, item 4: {@code dtm broker --data-dir} restarted used to come back on new ports while the worker and the
 * aggregator retried the old ones forever and reported UP. Now both report the lost broker, and resume when it is back
 * on the same ports.
 */
class BrokerRestartTest {

    @Test
    void servicesReportALostBrokerAndResumeWhenItIsBack(@TempDir Path dataDir, @TempDir Path stateDir) throws Exception {
        EmbeddedCluster first = EmbeddedCluster.start(dataDir);
        String bootstrap = first.bootstrapServers();
        SchemaRegistryClient registry = E2e.registry(first);
        EmbeddedCluster second = null;
        try (AggregatorApp aggregator = E2e.startAggregator(first, registry, "dtm-aggregator-restart", stateDir);
             E2e.RunningWorker worker = new E2e.RunningWorker(first, registry, "restart-workers", "restart")) {
            E2e.await("both report UP", E2e.TIMEOUT, () -> aggregator.health().up() && worker.worker.health().up());

            first.close();
            Health lost = E2e.awaitValue("the aggregator reports the lost broker", E2e.TIMEOUT,
                    () -> Optional.of(aggregator.health()).filter(h -> !h.up()));
            assertTrue(String.join("; ", lost.problems()).contains("Kafka at " + bootstrap + " has not answered"),
                    lost.toString());
            Health workerLost = E2e.awaitValue("the worker reports the lost broker", E2e.TIMEOUT,
                    () -> Optional.of(worker.worker.health()).filter(h -> !h.up()));
            assertTrue(String.join("; ", workerLost.problems()).contains("has not answered"), workerLost.toString());

            second = EmbeddedCluster.start(dataDir);
            assertEquals(bootstrap, second.bootstrapServers());
            E2e.await("both report UP again", E2e.TIMEOUT,
                    () -> aggregator.health().up() && worker.worker.health().up());

            SweepRequest sweep = E2e.sweep("after-restart", E2e.prompts(E2e.PROMPTS), 1);
            new SweepPublisher(E2e.clientProps(second), registry).publish(sweep);
            ScheduleView schedule = E2e.awaitFinished(aggregator, sweep.getSweepId(), Duration.ofMinutes(3));
            assertTrue(schedule.finished());
            assertEquals("rounds", schedule.stopReason());
        } finally {
            if (second != null) {
                second.close();
            }
            first.close();
        }
    }
}
