package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.local.EmbeddedCluster;
import io.dtm.planner.TrialPlanner;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.TreeSet;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * The aggregator is stopped part-way through round 0 and a new instance with the same application id but a FRESH state
 * directory takes over: it must rebuild every store from the changelog topics, pick up the results that arrived while
 * no aggregator ran, and finish the sweep exactly as an uninterrupted run of the same definition does.
 */
class AggregatorRestartTest {

    private static final String APPLICATION_ID = "dtm-aggregator-restart";
    private static final String WORKER_GROUP = "restart-workers";

    @Test
    void aRestartedAggregatorWithAFreshStateDirFinishesTheSweepAsAnUninterruptedRun() throws Exception {
        SweepRequest sweep = E2e.sweep("restart-sweep");
        SweepRequest uninterrupted = E2e.renamed(sweep, "restart-clean");
        Path temp = Files.createTempDirectory("dtm-restart");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.Reference reference = new E2e.Reference(sweep.getPrompts())) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();

            // Round 0 is scored here, with the engine's numbers exactly as a worker writes them, so what each
            // aggregator sees is under control; the real worker takes the later trials (measures and round 1). It
            // starts after round 0's trials, as a worker that joined later would.
            List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
            Map<String, Object> props = E2e.clientProps(cluster);
            new SweepPublisher(props, registry).publish(sweep);
            skipPublishedTrials(props, WORKER_GROUP);
            var serializer = AvroSerdes.serializer(DivergenceResult.class, registry);

            // 1. the first aggregator sees part of round 0: trials 0 and 1 complete, trial 2 with one shard of two
            try (AggregatorApp first = E2e.startAggregator(config(cluster, registry, APPLICATION_ID,
                    temp.resolve("state-1")))) {
                for (ComponentTrial shard : round0.subList(0, 5)) {
                    E2e.produceRaw(bootstrap, Topics.DIVERGENCES.name(), Topics.shardKey(shard.getTrialId(), shard.getShard()),
                            serializer.serialize(Topics.DIVERGENCES.name(), reference.result(shard, "early")));
                }
                RankingView atStop = E2e.awaitValue("part of round 0 is ranked", E2e.TIMEOUT, () -> first.queries()
                        .ranking(sweep.getSweepId(), OptionalInt.of(0)).filter(r -> r.entries().size() == 3));
                assertEquals(2, atStop.trialsDone());
                assertEquals(1, atStop.entries().stream().filter(e -> !e.complete()).count(), "one trial half in");
                assertFalse(atStop.decided());
            }

            // 2. while no aggregator runs, the rest of round 0 arrives: a backlog on top of state that only the
            //    changelogs hold now (the first five results' input offsets are committed: they are not read again)
            for (ComponentTrial shard : round0.subList(5, round0.size())) {
                E2e.produceRaw(bootstrap, Topics.DIVERGENCES.name(), Topics.shardKey(shard.getTrialId(), shard.getShard()),
                        serializer.serialize(Topics.DIVERGENCES.name(), reference.result(shard, "late")));
            }

            // 3. a new instance with a fresh state directory, and a real worker for the trials it plans
            try (E2e.RunningWorker worker = new E2e.RunningWorker(cluster, registry, WORKER_GROUP, "W")) {
                long restart = System.nanoTime();
                try (AggregatorApp second = E2e.startAggregator(config(cluster, registry, APPLICATION_ID,
                        temp.resolve("state-2")))) {
                    ScheduleView resumed = E2e.awaitFinished(second, sweep.getSweepId(), Duration.ofSeconds(120));
                    System.out.printf("restart: the new aggregator finished the sweep %.1f s after it started%n",
                            (System.nanoTime() - restart) / 1e9);

                    new SweepPublisher(E2e.clientProps(cluster), registry).publish(uninterrupted);
                    ScheduleView clean = E2e.awaitFinished(second, uninterrupted.getSweepId(), E2e.TIMEOUT);

                    assertEquals(2, resumed.steps().size());
                    assertEquals(clean.steps(), resumed.steps(), "the same schedule steps as the uninterrupted run");
                    assertEquals(clean.schedule(), resumed.schedule());
                    assertEquals(clean.stopReason(), resumed.stopReason());
                    for (int round = 0; round < 2; round++) {
                        RankingView r = E2e.ranking(second, sweep.getSweepId(), round);
                        assertEquals(E2e.ranking(second, uninterrupted.getSweepId(), round).entries(), r.entries(),
                                "round " + round);
                        assertEquals(6, r.trialsDone());
                        List<ScheduleView.Entry> before = round == 0 ? List.of()
                                : resumed.steps().get(round - 1).schedule();
                        for (RankingView.Entry e : r.entries()) {
                            PipelineEndToEndTest.assertMatches(reference.score(before, e.component(), e.compression()), e);
                        }
                        PipelineEndToEndTest.assertBestFirst(r.entries());
                    }
                    for (ScheduleView.Step step : resumed.steps()) {
                        assertEquals(reference.score(step.schedule(), null, null).fdtm(), step.fdtm());
                    }
                }
            }

            // exactly once across the restart: each step and each later trial published once
            Map<String, Integer> steps = countByKey(E2e.readAll(bootstrap, Topics.SCHEDULE.name(),
                    AvroSerdes.deserializer(ScheduleStep.class, registry)), sweep.getSweepId());
            assertEquals(Map.of("restart-sweep/0", 1, "restart-sweep/1", 1), steps);
            Map<String, Integer> trials = new HashMap<>();
            for (Map.Entry<String, ComponentTrial> t : E2e.readAll(bootstrap, Topics.TRIALS.name(),
                    AvroSerdes.deserializer(ComponentTrial.class, registry))) {
                if (t.getValue().getSweepId().equals(sweep.getSweepId())) {
                    trials.merge(t.getKey(), 1, Integer::sum);
                }
            }
            assertEquals(2 * (6 + 1 + 6 + 1), trials.size());
            trials.forEach((key, n) -> assertEquals(1, n, "trial shard " + key + " published once"));

            // round 0 came only from this test (so the first five results reached the new instance only through
            // the changelogs), everything after it from the real worker
            Map<String, Set<String>> writers = new HashMap<>();
            E2e.readAll(bootstrap, Topics.DIVERGENCES.name(), AvroSerdes.deserializer(DivergenceResult.class, registry))
                    .stream().map(Map.Entry::getValue).filter(r -> r.getSweepId().equals(sweep.getSweepId()))
                    .forEach(r -> writers.computeIfAbsent(r.getRound() == 0 && r.getKind() == TrialKind.CANDIDATE
                            ? "round 0" : "later", k -> new TreeSet<>()).add(r.getWorkerId()));
            assertEquals(Map.of("round 0", Set.of("early", "late"), "later", Set.of("W")), writers);
        } finally {
            E2e.deleteTree(temp);
        }
    }

    /**
     * Kafka Streams does not leave the group on close, so the new member waits for the old one's session to expire:
     * a 6 s session (the broker's minimum) instead of the 45 s default keeps that short.
     */
    static AggregatorApp.Config config(EmbeddedCluster cluster, SchemaRegistryClient registry, String applicationId,
                                       Path stateDir) {
        return AggregatorApp.Config.builder(cluster.bootstrapServers(), registry)
                .applicationId(applicationId).stateDir(stateDir).commitIntervalMs(100)
                .clientProps(Map.of(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6000,
                        ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000))
                .httpBindHost("127.0.0.1").httpAdvertisedHost("127.0.0.1").httpPort(0).build();
    }

    /** Commits {@code group}'s offsets at the end of the trial queue, so its workers start after what is there. */
    static void skipPublishedTrials(Map<String, Object> props, String group) throws Exception {
        try (Admin admin = Admin.create(props)) {
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            for (int p = 0; p < EmbeddedCluster.PARTITIONS; p++) {
                latest.put(new TopicPartition(Topics.TRIALS.name(), p), OffsetSpec.latest());
            }
            Map<TopicPartition, OffsetAndMetadata> ends = new HashMap<>();
            admin.listOffsets(latest, new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all().get()
                    .forEach((tp, info) -> ends.put(tp, new OffsetAndMetadata(info.offset())));
            admin.alterConsumerGroupOffsets(group, ends).all().get();
        }
    }

    private static <T> Map<String, Integer> countByKey(List<Map.Entry<String, T>> records, String sweepId) {
        Map<String, Integer> counts = new HashMap<>();
        records.stream().filter(r -> r.getKey().startsWith(sweepId + "/"))
                .forEach(r -> counts.merge(r.getKey(), 1, Integer::sum));
        return counts;
    }
}
