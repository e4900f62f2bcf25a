package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.engine.Trial;
import io.dtm.engine.TrialScore;
import io.dtm.local.EmbeddedCluster;
import io.dtm.planner.Allocations;
import io.dtm.planner.Rounds;
import io.dtm.planner.StopReason;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.BaselineMeasure;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import org.apache.kafka.common.serialization.Serializer;
import org.junit.jupiter.api.Test;

/**
 * A target allocation on the real broker with the tiny model: its iterations' trials go through the worker group and
 * the aggregator, and every schedule, threshold, FDTM, metric, text metric and baseline it publishes is what the
 * planner decides on the engine's own numbers; and an aggregator restarted mid-iteration on a fresh state directory
 * ends with the same schedule as an uninterrupted run.
 */
class TargetAllocationEndToEndTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aTargetAllocationRunsThroughThePipelineAsThePlannerDecidesOnTheEnginesNumbers() throws Exception {
        SweepRequest sweep = E2e.targetSweep("target-e2e", 2);
        Path stateDir = Files.createTempDirectory("dtm-target-e2e");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.Reference reference = new E2e.Reference(sweep.getPrompts());
             AggregatorApp aggregator = E2e.startAggregator(cluster, E2e.registry(cluster), "dtm-aggregator-target",
                     stateDir);
             E2e.RunningWorker w0 = new E2e.RunningWorker(cluster, E2e.registry(cluster), "dtm-workers", "t-worker-0");
             E2e.RunningWorker w1 = new E2e.RunningWorker(cluster, E2e.registry(cluster), "dtm-workers", "t-worker-1")) {
            SweepPublisher.Summary published = new SweepPublisher(E2e.clientProps(cluster), E2e.registry(cluster))
                    .publish(sweep);
            assertEquals(6 * 3 + 2, published.trials(), "3 trials for each of 6 components, and the 2 baselines");

            ScheduleView schedule = E2e.awaitFinished(aggregator, sweep.getSweepId(), E2e.TIMEOUT);
            assertEquals(StopReason.TARGET_SPARSITY.code(), schedule.stopReason(), schedule.toString());
            assertEquals(2, schedule.rounds());

            List<ScheduleStep> expected = replay(sweep, reference);
            assertEquals(expected.stream().map(ScheduleView.Step::of).toList(), schedule.steps());
            assertEquals(2, schedule.steps().size());
            assertEquals(0.25, schedule.steps().get(0).allocation().target());
            assertTrue(schedule.steps().get(1).overallSparsity() >= 0.5);
            assertNotNull(schedule.steps().get(1).text());

            List<BaselineMeasure> baselines = baselines(sweep, reference);
            assertEquals(baselines.stream().map(ScheduleView.Baseline::of).toList(), schedule.baselines());
            for (ScheduleView.Baseline b : schedule.baselines()) {
                assertEquals(0.5, b.overallSparsity(), 1e-6, b.name());
                assertNotNull(b.text(), b.name());
            }
            assertFalse(schedule.baselines().get(0).schedule().equals(schedule.baselines().get(1).schedule()));

            // every iteration's trials went through Kafka, ranked live like a greedy round
            RankingView ranking1 = E2e.ranking(aggregator, sweep.getSweepId(), 1);
            assertTrue(ranking1.decided());
            assertEquals(ranking1.trialsTotal(), ranking1.trialsDone());

            // the HTTP API answers the same, with the target's own keys
            String base = "http://127.0.0.1:" + aggregator.restAddress().port() + "/sweeps/" + sweep.getSweepId();
            HttpResponse<String> json = HttpClient.newHttpClient().send(
                    HttpRequest.newBuilder(URI.create(base + "/schedule")).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, json.statusCode(), json.body());
            assertEquals(schedule, JSON.readValue(json.body(), ScheduleView.class));
            JsonNode tree = JSON.readTree(json.body());
            assertEquals("global", tree.path("baselines").path(1).path("name").textValue());
            assertTrue(tree.path("steps").path(1).path("text").path("perplexity").isNumber(), json.body());
            assertEquals(2, tree.path("steps").path(1).path("allocation").path("iteration").intValue());
        } finally {
            E2e.deleteTree(stateDir);
        }
    }

    /**
     * The first aggregator sees part of iteration 1 and is stopped; the rest of it and both baselines arrive while none
     * runs; a new one with the same application id and a fresh state directory finishes the sweep, with a real worker
     * for the trials it plans. Round 0 and the baselines are scored here, with the engine's numbers exactly as a worker
     * writes them.
     */
    @Test
    void anAggregatorRestartedMidIterationEndsWithTheSameScheduleAsAnUninterruptedRun() throws Exception {
        SweepRequest sweep = E2e.targetSweep("target-restart", 2);
        SweepRequest uninterrupted = E2e.renamed(sweep, "target-clean");
        Path temp = Files.createTempDirectory("dtm-target-restart");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.Reference reference = new E2e.Reference(sweep.getPrompts())) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();
            List<ComponentTrial> first = Rounds.first(sweep);
            new SweepPublisher(E2e.clientProps(cluster), registry).publish(sweep);
            AggregatorRestartTest.skipPublishedTrials(E2e.clientProps(cluster), "target-restart-workers");
            Serializer<DivergenceResult> serializer = AvroSerdes.serializer(DivergenceResult.class, registry);
            List<ComponentTrial> round0 = first.stream().filter(t -> t.getKind() == TrialKind.CANDIDATE).toList();
            int early = round0.size() / 2 + 1; // an odd count: one trial has one of its two shards in

            try (AggregatorApp firstApp = E2e.startAggregator(AggregatorRestartTest.config(cluster, registry,
                    "dtm-aggregator-target-restart", temp.resolve("state-1")))) {
                round0.subList(0, early).forEach(shard -> send(bootstrap, serializer, reference, shard, "early"));
                RankingView atStop = E2e.awaitValue("part of iteration 1 is ranked", E2e.TIMEOUT, () -> firstApp
                        .queries().ranking(sweep.getSweepId(), OptionalInt.of(0))
                        .filter(r -> r.entries().size() == (early + 1) / 2));
                assertFalse(atStop.decided());
                assertEquals(1, atStop.entries().stream().filter(e -> !e.complete()).count());
            }
            round0.subList(early, round0.size()).forEach(shard -> send(bootstrap, serializer, reference, shard, "late"));
            first.stream().filter(t -> t.getKind() == TrialKind.BASELINE)
                    .forEach(shard -> send(bootstrap, serializer, reference, shard, "late"));

            try (E2e.RunningWorker worker = new E2e.RunningWorker(cluster, registry, "target-restart-workers", "W");
                 AggregatorApp second = E2e.startAggregator(AggregatorRestartTest.config(cluster, registry,
                         "dtm-aggregator-target-restart", temp.resolve("state-2")))) {
                ScheduleView resumed = E2e.awaitFinished(second, sweep.getSweepId(), Duration.ofSeconds(120));
                new SweepPublisher(E2e.clientProps(cluster), registry).publish(uninterrupted);
                ScheduleView clean = E2e.awaitFinished(second, uninterrupted.getSweepId(), E2e.TIMEOUT);

                assertEquals(StopReason.TARGET_SPARSITY.code(), resumed.stopReason());
                assertEquals(clean.steps(), resumed.steps(), "the same iterations as the uninterrupted run");
                assertEquals(clean.schedule(), resumed.schedule());
                assertEquals(clean.baselines(), resumed.baselines());
                assertEquals(replay(sweep, reference).stream().map(ScheduleView.Step::of).toList(), resumed.steps());
            }

            // exactly once across the restart: each step published once
            Map<String, Integer> steps = new HashMap<>();
            E2e.readAll(bootstrap, Topics.SCHEDULE.name(), AvroSerdes.deserializer(ScheduleStep.class, registry))
                    .stream().filter(r -> r.getKey().startsWith(sweep.getSweepId() + "/"))
                    .forEach(r -> steps.merge(r.getKey(), 1, Integer::sum));
            assertEquals(Map.of("target-restart/0", 1, "target-restart/1", 1), steps);
        } finally {
            E2e.deleteTree(temp);
        }
    }

    private static void send(String bootstrap, Serializer<DivergenceResult> serializer, E2e.Reference reference,
                             ComponentTrial shard, String workerId) {
        E2e.produceRaw(bootstrap, Topics.DIVERGENCES.name(), Topics.shardKey(shard.getTrialId(), shard.getShard()),
                serializer.serialize(Topics.DIVERGENCES.name(), reference.result(shard, workerId)));
    }

    /** The allocation the planner makes on the engine's numbers, iteration after iteration, without Kafka. */
    private static List<ScheduleStep> replay(SweepRequest sweep, E2e.Reference reference) {
        List<ScheduleStep> steps = new ArrayList<>();
        ScheduleStep before = null;
        for (int round = 0; before == null || !before.getLast(); round++) {
            Map<String, int[]> fdts = new HashMap<>();
            for (ComponentTrial t : Allocations.candidates(sweep, round, Rounds.scheduleOf(before))) {
                fdts.computeIfAbsent(t.getTrialId(), id -> reference.engine.score(reference.set, reference.trial(t))
                        .fdt());
            }
            Rounds.Decision decision = Allocations.decide(sweep, round, before, fdts);
            ComponentTrial measure = decision.measure().get(0);
            Trial measured = reference.trial(measure);
            TrialScore score = reference.engine.score(reference.set, measured);
            before = Allocations.measured(sweep, decision.step(), score.summary(), score.fdt(),
                    reference.text(measured, measure.getText(), measure.getTextWindow())).step();
            steps.add(before);
        }
        return steps;
    }

    /** Both baselines as the engine scores them. */
    private static List<BaselineMeasure> baselines(SweepRequest sweep, E2e.Reference reference) {
        List<BaselineMeasure> measured = new ArrayList<>();
        for (ComponentTrial t : Allocations.baselines(sweep)) {
            if (t.getShard() == 0) {
                Trial trial = reference.trial(t);
                TrialScore score = reference.engine.score(reference.set, trial);
                measured.add(Allocations.baseline(sweep, t.getComponent(), E2e.Reference.scheduleOf(trial),
                        score.summary(), score.fdt(), reference.text(trial, t.getText(), t.getTextWindow())));
            }
        }
        return measured;
    }
}
