package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.local.EmbeddedCluster;
import io.dtm.planner.TrialPlanner;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/**
 * A worker stopped mid-trial: the other finishes it, and the ranking is unchanged by the redelivery.
 *
 * <p>Worker A runs as its own JVM ({@code dtm worker}) and is killed with SIGKILL the moment it logs that it is scoring
 * a trial, so that trial's transaction (result + consumed offset) never commits. Worker B, in this JVM, takes A's
 * partitions once A's group session expires and scores everything A left. A runs with {@code --client-config} setting
 * a 6 s session timeout (the broker's minimum) and a 10 s transaction timeout, so the hand-over takes seconds instead of
 * the defaults' 45 s (plus up to 60 s for an open transaction to be aborted).
 */
class WorkerFailoverTest {

    private static final Pattern SCORING = Pattern.compile(
            "scoring (CANDIDATE|SCHEDULE) (\\S+) (\\S+) round (\\d+) shard (\\d+)/(\\d+)");

    @Test
    void aWorkerKilledMidTrialIsReplacedAndTheRankingIsUnchanged() throws Exception {
        SweepRequest sweep = E2e.sweep("failover-sweep");
        SweepRequest clean = E2e.renamed(sweep, "failover-clean");
        String group = "failover-workers";
        Path temp = Files.createTempDirectory("dtm-failover");
        Path clientConfig = Files.writeString(temp.resolve("worker-a.properties"), String.join("\n",
                "session.timeout.ms=6000", "heartbeat.interval.ms=1000", "transaction.timeout.ms=10000", ""));
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.Reference reference = new E2e.Reference(sweep.getPrompts());
             AggregatorApp aggregator = E2e.startAggregator(cluster, E2e.registry(cluster), "dtm-aggregator-failover",
                     temp.resolve("streams"));
             ChildWorker a = ChildWorker.start("A", List.of("--bootstrap-servers", cluster.bootstrapServers(),
                     "--registry-url", cluster.registryUrl(), "--worker-id", "A", "--group", group, "--device", "cpu",
                     "--client-config", clientConfig.toString()))) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();

            E2e.await("worker A joins the group", Duration.ofSeconds(60), () -> a.printed("A: partitions assigned"));
            a.killOn(line -> line.contains("A: scoring "));
            new SweepPublisher(E2e.clientProps(cluster), registry).publish(sweep);

            E2e.await("worker A is killed while scoring", Duration.ofSeconds(60), () -> a.killedAt() != null);
            long killedNanos = System.nanoTime();
            assertEquals(137, a.waitForExit(10), "SIGKILL");
            System.out.println("failover: killed worker A at: " + a.killedAt());
            Matcher killed = SCORING.matcher(a.killedAt());
            assertTrue(killed.find(), a.killedAt());
            String killedComponent = killed.group(2);
            String killedCompression = killed.group(3);
            int killedShard = Integer.parseInt(killed.group(5)) - 1;
            List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
            ComponentTrial killedTrial = round0.stream()
                    .filter(t -> t.getComponent().equals(killedComponent)
                            && t.getCompression().equals(killedCompression) && t.getShard() == killedShard)
                    .findFirst().orElseThrow();
            String killedKey = Topics.shardKey(killedTrial.getTrialId(), killedTrial.getShard());

            // A's trial never committed: nothing of it is visible to read_committed readers
            List<DivergenceResult> byA = results(bootstrap, registry).stream()
                    .filter(r -> r.getWorkerId().equals("A")).toList();
            assertEquals(List.of(), byA, "A committed no result before it was killed");
            assertFalse(aggregator.queries().schedule(sweep.getSweepId()).orElseThrow().finished());

            ScheduleView schedule;
            try (E2e.RunningWorker b = new E2e.RunningWorker(cluster, registry, group, "B")) {
                schedule = E2e.awaitFinished(aggregator, sweep.getSweepId(), Duration.ofSeconds(150));
                System.out.printf("failover: the sweep finished %.1f s after A was killed%n",
                        (System.nanoTime() - killedNanos) / 1e9);

                // every shard of every trial has exactly one result value, all of them from B
                Map<String, List<ConsumerRecord<String, byte[]>>> byKey = divergenceRecords(bootstrap, registry, sweep);
                assertEquals(2 * (6 + 1 + 6 + 1), byKey.size(), "every shard of both rounds and both measures");
                for (var e : byKey.entrySet()) {
                    Set<List<Integer>> values = e.getValue().stream()
                            .map(r -> decode(registry, r).getFdt()).collect(Collectors.toSet());
                    assertEquals(1, values.size(), "one value for " + e.getKey());
                }
                assertTrue(byKey.containsKey(killedKey), "the shard A was scoring has a result");
                assertEquals("B", decode(registry, byKey.get(killedKey).get(0)).getWorkerId(),
                        "B scored the shard A was killed on");
                assertEquals(Set.of("B"), byKey.values().stream().flatMap(List::stream)
                        .map(r -> decode(registry, r).getWorkerId()).collect(Collectors.toSet()));

                // the same definition, run cleanly by the healthy worker, gives the same ranking and schedule
                new SweepPublisher(E2e.clientProps(cluster), registry).publish(clean);
                ScheduleView cleanSchedule = E2e.awaitFinished(aggregator, clean.getSweepId(), E2e.TIMEOUT);
                assertEquals(cleanSchedule.steps(), schedule.steps());
                for (int round = 0; round < 2; round++) {
                    assertEquals(E2e.ranking(aggregator, clean.getSweepId(), round).entries(),
                            E2e.ranking(aggregator, sweep.getSweepId(), round).entries(), "round " + round);
                }
                RankingView round0View = E2e.ranking(aggregator, sweep.getSweepId(), 0);
                for (RankingView.Entry e : round0View.entries()) {
                    PipelineEndToEndTest.assertMatches(reference.candidate(e.component(), e.compression()), e);
                }

                // redelivery: the same result (key and bytes) again changes nothing
                RankingView before0 = E2e.ranking(aggregator, sweep.getSweepId(), 0);
                RankingView before1 = E2e.ranking(aggregator, sweep.getSweepId(), 1);
                int rankingRecords = E2e.readAll(bootstrap, Topics.RANKINGS.name()).size();
                int scheduleRecords = E2e.readAll(bootstrap, Topics.SCHEDULE.name()).size();
                ConsumerRecord<String, byte[]> candidate = byKey.get(killedKey).get(0);
                String measureKey = byKey.entrySet().stream()
                        .filter(e -> decode(registry, e.getValue().get(0)).getKind() == TrialKind.SCHEDULE)
                        .map(Map.Entry::getKey).sorted().findFirst().orElseThrow();
                ConsumerRecord<String, byte[]> measure = byKey.get(measureKey).get(0);
                for (ConsumerRecord<String, byte[]> original : List.of(candidate, measure)) {
                    E2e.produceRaw(bootstrap, Topics.DIVERGENCES.name(), original.key(), original.value());
                    // a probe with the same key lands after the duplicate in the same partition: once its dead
                    // letter is out, the duplicate has been processed
                    DivergenceResult probe = DivergenceResult.newBuilder(decode(registry, original)).build();
                    List<Integer> fdt = new ArrayList<>(probe.getFdt());
                    fdt.set(0, E2e.TOKENS + 100);
                    probe.setFdt(fdt);
                    E2e.produceRaw(bootstrap, Topics.DIVERGENCES.name(), original.key(),
                            AvroSerdes.serializer(DivergenceResult.class, registry).serialize(Topics.DIVERGENCES.name(), probe));
                }
                E2e.await("both probes are dead-lettered", E2e.TIMEOUT, () -> deadLetters(bootstrap, registry).stream()
                        .filter(d -> d.getReason().contains("fdt[0] = " + (E2e.TOKENS + 100)))
                        .map(DeadLetter::getKey).collect(Collectors.toSet())
                        .equals(Set.of(killedKey, measureKey)));
                assertEquals(before0, E2e.ranking(aggregator, sweep.getSweepId(), 0),
                        "round 0 unchanged, not even republished");
                assertEquals(before1, E2e.ranking(aggregator, sweep.getSweepId(), 1));
                assertEquals(schedule, aggregator.queries().schedule(sweep.getSweepId()).orElseThrow());
                assertEquals(rankingRecords, E2e.readAll(bootstrap, Topics.RANKINGS.name()).size(), "no new ranking update");
                assertEquals(scheduleRecords, E2e.readAll(bootstrap, Topics.SCHEDULE.name()).size(), "no new schedule step");
                assertEquals(6, before0.trialsDone());
                assertTrue(b.alive());
            }
        } finally {
            E2e.deleteTree(temp);
        }
    }

    private static List<DivergenceResult> results(String bootstrap, SchemaRegistryClient registry) {
        return E2e.readAll(bootstrap, Topics.DIVERGENCES.name(), AvroSerdes.deserializer(DivergenceResult.class, registry))
                .stream().map(Map.Entry::getValue).toList();
    }

    private static List<DeadLetter> deadLetters(String bootstrap, SchemaRegistryClient registry) {
        return E2e.readAll(bootstrap, Topics.DEAD_LETTERS.name(), AvroSerdes.deserializer(DeadLetter.class, registry))
                .stream().map(Map.Entry::getValue).toList();
    }

    /** The committed result records of {@code sweep}, by key. */
    private static Map<String, List<ConsumerRecord<String, byte[]>>> divergenceRecords(
            String bootstrap, SchemaRegistryClient registry, SweepRequest sweep) {
        Map<String, List<ConsumerRecord<String, byte[]>>> byKey = new HashMap<>();
        for (ConsumerRecord<String, byte[]> r : E2e.readAll(bootstrap, Topics.DIVERGENCES.name())) {
            if (decode(registry, r).getSweepId().equals(sweep.getSweepId())) {
                byKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r);
            }
        }
        return byKey;
    }

    private static DivergenceResult decode(SchemaRegistryClient registry, ConsumerRecord<String, byte[]> r) {
        return AvroSerdes.deserializer(DivergenceResult.class, registry).deserialize(r.topic(), r.value());
    }
}
