package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import io.dtm.schemas.serde.WireFormat;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.Test;

/**
 * Records no stage can process end up on {@code dtm.dead-letters} with the reason, the service that gave up and the
 * original payload; the worker and the aggregator go on working (a real sweep finishes afterwards).
 */
class DeadLetterTest {

    /** What was produced and where it landed. */
    private record Sent(String topic, String key, byte[] payload, RecordMetadata at) {}

    @Test
    void unprocessableRecordsAreDeadLetteredWithReasonAndPayloadAndNothingStops() throws Exception {
        SweepRequest sweep = E2e.sweep("dl-sweep", E2e.prompts(E2e.PROMPTS), 1);
        Path temp = Files.createTempDirectory("dtm-dead-letters");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.Reference reference = new E2e.Reference(sweep.getPrompts());
             AggregatorApp aggregator = E2e.startAggregator(AggregatorApp.Config
                     .builder(cluster.bootstrapServers(), E2e.registry(cluster))
                     .applicationId("dtm-aggregator-dl").stateDir(temp.resolve("streams")).commitIntervalMs(100)
                     .unknownSweepGrace(Duration.ofSeconds(2))
                     .httpBindHost("127.0.0.1").httpAdvertisedHost("127.0.0.1").build());
             E2e.RunningWorker worker = new E2e.RunningWorker(cluster, E2e.registry(cluster), "dl-workers", "dl-worker")) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();
            // a well-formed trial shard of a sweep nobody published, to break in one way at a time
            ComponentTrial template = TrialPlanner.candidates(E2e.sweep("dl-unpublished"), 0, List.of()).get(0);

            Map<String, Sent> sent = new LinkedHashMap<>();
            // (a) bytes that are not in the wire format at all, to the worker
            send(sent, bootstrap, Topics.TRIALS.name(), "garbage-trial/0",
                    "{\"trialId\": \"not avro\"}".getBytes(StandardCharsets.UTF_8));
            // (b) a component the 2-layer model does not have
            send(sent, bootstrap, Topics.TRIALS.name(), "unknown-component/0", E2e.encode(registry, Topics.TRIALS.name(),
                    ComponentTrial.newBuilder(template).setTrialId("unknown-component")
                            .setComponent("model.layers.9.mlp.up_proj").build()));
            // (c) a sparsity outside [0, 1]
            send(sent, bootstrap, Topics.TRIALS.name(), "bad-sparsity/0", E2e.encode(registry, Topics.TRIALS.name(),
                    ComponentTrial.newBuilder(template).setTrialId("bad-sparsity").setCompression("prune:1.5").build()));
            // (d) a model directory that does not exist
            String missingModel = temp.resolve("no-such-model").toString();
            send(sent, bootstrap, Topics.TRIALS.name(), "missing-model/0", E2e.encode(registry, Topics.TRIALS.name(),
                    ComponentTrial.newBuilder(template).setTrialId("missing-model").setModel(missingModel).build()));
            // (e) garbage to the aggregator
            send(sent, bootstrap, Topics.DIVERGENCES.name(), "garbage-result/0",
                    new byte[] {(byte) 0xde, (byte) 0xad, (byte) 0xbe, (byte) 0xef, 1, 2, 3, 4});
            // (g) a valid result of a sweep that never arrives (the aggregator waits 2 s for it here)
            DivergenceResult orphan = DivergenceResult.newBuilder()
                    .setTrialId("orphan").setShard(0).setShardCount(2).setSweepId("never-published")
                    .setComponent("model.layers.0.mlp.down_proj").setCompression("prune:0.5").setTokens(E2e.TOKENS)
                    .setFdt(List.of(16, 3)).setSdt(List.of(0.0, 0.5)).build();
            send(sent, bootstrap, Topics.DIVERGENCES.name(), "orphan/0",
                    AvroSerdes.serializer(DivergenceResult.class, registry).serialize(Topics.DIVERGENCES.name(), orphan));

            Map<String, DeadLetter> letters = new LinkedHashMap<>();
            E2e.await("every bad record is dead-lettered", E2e.TIMEOUT, () -> {
                letters.clear();
                E2e.readAll(bootstrap, Topics.DEAD_LETTERS.name(), AvroSerdes.deserializer(DeadLetter.class, registry))
                        .forEach(e -> letters.put(e.getKey(), e.getValue()));
                return letters.keySet().containsAll(sent.keySet());
            });
            assertEquals(sent.keySet(), letters.keySet(), "one dead letter per bad record, nothing else");
            letters.forEach((key, letter) -> System.out.printf("dead letter %s from %s: %s%n", key, letter.getService(),
                    letter.getReason()));

            for (Sent s : sent.values()) {
                DeadLetter letter = letters.get(s.key());
                assertEquals(s.topic(), letter.getSourceTopic(), s.key());
                assertEquals(s.at().partition(), letter.getPartition(), s.key());
                assertEquals(s.at().offset(), letter.getOffset(), s.key());
                assertArrayEquals(s.payload(), bytes(letter.getPayload()), "payload of " + s.key() + " preserved");
                assertEquals(s.topic().equals(Topics.TRIALS.name()) ? "gpu-worker" : "aggregator", letter.getService(), s.key());
                assertTrue(letter.getFailedAtMs() > 0);
            }
            assertReason(letters, "garbage-trial/0", "not in Confluent wire format", "first byte 0x7b");
            assertReason(letters, "unknown-component/0", "model.layers.9.mlp.up_proj");
            assertReason(letters, "bad-sparsity/0", "sparsity", "1.5");
            assertReason(letters, "missing-model/0", missingModel);
            assertReason(letters, "garbage-result/0", "not in Confluent wire format", "first byte 0xde");
            assertReason(letters, "orphan/0", "unknown sweep never-published");

            // the worker wrote no result and no baseline for the bad trials
            Set<String> resultKeys = E2e.readAll(bootstrap, Topics.DIVERGENCES.name()).stream()
                    .map(r -> r.key()).collect(Collectors.toSet());
            assertEquals(Set.of("garbage-result/0", "orphan/0"), resultKeys,
                    "only the records this test wrote itself");
            assertEquals(List.of(), E2e.readAll(bootstrap, Topics.BASELINES.name()));

            // and both services go on: a real sweep finishes, with the engine's numbers
            assertTrue(worker.alive(), "the worker still runs");
            new SweepPublisher(E2e.clientProps(cluster), registry).publish(sweep);
            ScheduleView schedule = E2e.awaitFinished(aggregator, sweep.getSweepId(), E2e.TIMEOUT);
            assertEquals(1, schedule.steps().size());
            RankingView ranking = E2e.ranking(aggregator, sweep.getSweepId(), 0);
            assertEquals(6, ranking.trialsDone());
            for (RankingView.Entry e : ranking.entries()) {
                PipelineEndToEndTest.assertMatches(reference.candidate(e.component(), e.compression()), e);
            }
            assertTrue(worker.alive() && worker.failure.get() == null, "the worker survived every bad record");
            E2e.await("the worker counts 4 dead letters, 12 candidate shards and 2 measure shards", E2e.TIMEOUT,
                    () -> worker.worker.processed() == 4 + 12 + 2);
        } finally {
            E2e.deleteTree(temp);
        }
    }

    /**
     * A payload in wire format whose schema id the registry never issued can never decode: it must be dead-lettered
     * like any other undecodable record, not retried as if the registry were down.
     */
    @Test
    void aResultWithAnUnknownSchemaIdIsDeadLetteredAndTheAggregatorGoesOn() throws Exception {
        SweepRequest sweep = E2e.sweep("dl-schema-sweep", E2e.prompts(E2e.PROMPTS), 1);
        Path temp = Files.createTempDirectory("dtm-dead-letters-schema");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             AggregatorApp aggregator = E2e.startAggregator(cluster, E2e.registry(cluster), "dtm-aggregator-dl-schema",
                     temp.resolve("streams"));
             E2e.RunningWorker worker = new E2e.RunningWorker(cluster, E2e.registry(cluster), "dl-workers", "dl-w")) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();
            Map<String, Sent> sent = new LinkedHashMap<>();
            // wire format naming a schema id the registry never issued
            send(sent, bootstrap, Topics.DIVERGENCES.name(), "unknown-schema/0",
                    ByteBuffer.allocate(9).put(WireFormat.header(9999)).putInt(42).array());

            DeadLetter letter = E2e.awaitValue("the record is dead-lettered", Duration.ofSeconds(30), () ->
                    E2e.readAll(bootstrap, Topics.DEAD_LETTERS.name(), AvroSerdes.deserializer(DeadLetter.class, registry))
                            .stream().filter(e -> "unknown-schema/0".equals(e.getKey())).map(Map.Entry::getValue)
                            .findFirst());
            assertEquals("aggregator", letter.getService());
            assertEquals(Topics.DIVERGENCES.name(), letter.getSourceTopic());
            assertArrayEquals(sent.get("unknown-schema/0").payload(), bytes(letter.getPayload()));
            assertReason(Map.of("unknown-schema/0", letter), "unknown-schema/0", "unknown schema id 9999");

            new SweepPublisher(E2e.clientProps(cluster), registry).publish(sweep);
            assertTrue(E2e.awaitFinished(aggregator, sweep.getSweepId(), E2e.TIMEOUT).finished());
            assertTrue(worker.alive());
        } finally {
            E2e.deleteTree(temp);
        }
    }

    private static void send(Map<String, Sent> sent, String bootstrap, String topic, String key, byte[] payload) {
        sent.put(key, new Sent(topic, key, payload, E2e.produceRaw(bootstrap, topic, key, payload)));
    }

    private static void assertReason(Map<String, DeadLetter> letters, String key, String... parts) {
        String reason = letters.get(key).getReason();
        for (String part : parts) {
            assertTrue(reason.contains(part), "the reason for " + key + " names '" + part + "': " + reason);
        }
    }

    private static byte[] bytes(ByteBuffer buffer) {
        ByteBuffer copy = buffer.duplicate();
        byte[] out = new byte[copy.remaining()];
        copy.get(out);
        return out;
    }
}
