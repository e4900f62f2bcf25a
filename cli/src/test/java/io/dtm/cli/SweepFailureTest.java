package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.ScheduleView;
import io.dtm.planner.StopReason;
import io.dtm.local.EmbeddedCluster;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.SweepRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Issue 8, item 6, end to end: a sweep naming a component the workers' model lacks (it was published against another
 * model, or edited) used to stall forever; now the worker's dead letter fails the sweep and the API says why.
 */
class SweepFailureTest {

    @Test
    void aSweepNamingAComponentTheModelLacksFailsAndTheApiSaysWhy() throws Exception {
        SweepRequest valid = E2e.sweep("failing-sweep", E2e.prompts(E2e.PROMPTS), 2);
        List<ComponentInfo> components = new ArrayList<>(valid.getComponents());
        components.add(new ComponentInfo("model.layers.7.mlp.up_proj", 11264L, 64)); // the tiny model has 2 layers
        SweepRequest sweep = SweepRequest.newBuilder(valid).setComponents(components).build();
        Path stateDir = Files.createTempDirectory("dtm-failing-sweep");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             AggregatorApp aggregator = E2e.startAggregator(cluster, E2e.registry(cluster), "dtm-aggregator-fail",
                     stateDir);
             E2e.RunningWorker worker = new E2e.RunningWorker(cluster, E2e.registry(cluster), "fail-workers", "w")) {
            new SweepPublisher(E2e.clientProps(cluster), E2e.registry(cluster)).publish(sweep);

            ScheduleView schedule = E2e.awaitFinished(aggregator, sweep.getSweepId(), E2e.TIMEOUT);
            assertEquals(StopReason.FAILED.code(), schedule.stopReason());
            assertTrue(schedule.failure().contains("model.layers.7.mlp.up_proj prune:0.5")
                    && schedule.failure().contains("dead-lettered by gpu-worker")
                    && schedule.failure().contains("unknown component 'model.layers.7.mlp.up_proj'"), schedule.failure());
            assertEquals(List.of(), schedule.schedule(), "nothing was committed");

            HttpResponse<String> reply = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                    "http://127.0.0.1:" + aggregator.restAddress().port() + "/sweeps/failing-sweep/schedule")).build(),
                    HttpResponse.BodyHandlers.ofString());
            JsonNode body = new ObjectMapper().readTree(reply.body());
            assertEquals("failed", body.get("stopReason").asText());
            assertTrue(body.get("finished").asBoolean());
            assertEquals(schedule.failure(), body.get("failure").asText());
            assertTrue(worker.alive());
        } finally {
            E2e.deleteTree(stateDir);
        }
    }
}
