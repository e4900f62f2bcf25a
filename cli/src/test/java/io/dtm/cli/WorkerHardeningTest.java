package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.engine.ModelFiles;
import io.dtm.local.EmbeddedCluster;
import io.dtm.planner.TrialPlanner;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.BaseContinuation;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.http.BoundedHttpServer;
import io.dtm.schemas.http.Health;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import io.dtm.worker.TrialWorker;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.avro.Schema;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * Issue 8, items 1 and 2, worker side, on the real broker: a poison pill is dead-lettered and committed and the worker
 * goes on; a worker that cannot even dead-letter stops consuming and says so; a baseline that does not match the
 * model and prompts, or whose references the worker cannot reproduce, is recomputed.
 */
class WorkerHardeningTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void poisonPillsAreDeadLetteredAndTheWorkerGoesOn() throws Exception {
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.RunningWorker worker = new E2e.RunningWorker(cluster, E2e.registry(cluster), "pp-workers", "pp")) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();
            ComponentTrial template = TrialPlanner.candidates(E2e.sweep("pp-sweep"), 0, List.of()).get(0);
            // passes every check a trial had; the worker used to run out of memory on it and die, record uncommitted
            send(registry, bootstrap, ComponentTrial.newBuilder(template).setTrialId("huge-tokens")
                    .setTokens(2_000_000_000).build());
            // 10,000 characters: far more tokens than the tiny model's 512 positions
            send(registry, bootstrap, ComponentTrial.newBuilder(template).setTrialId("long-prompt")
                    .setPrompts(List.of("word ".repeat(2000))).build());
            send(registry, bootstrap, template);

            Map<String, DeadLetter> letters = E2e.latestByKey(E2e.readAll(bootstrap, Topics.DEAD_LETTERS.name(),
                    AvroSerdes.deserializer(DeadLetter.class, registry)));
            E2e.await("both poison pills are dead-lettered and the good trial scored", E2e.TIMEOUT, () -> {
                letters.clear();
                letters.putAll(E2e.latestByKey(E2e.readAll(bootstrap, Topics.DEAD_LETTERS.name(),
                        AvroSerdes.deserializer(DeadLetter.class, registry))));
                return letters.size() == 2 && E2e.readAll(bootstrap, Topics.DIVERGENCES.name()).size() == 1;
            });
            String tokens = letters.get("huge-tokens/0").getReason();
            assertTrue(tokens.contains("2000000000 tokens") && tokens.contains("max_position_embeddings"), tokens);
            String prompt = letters.get("long-prompt/0").getReason();
            assertTrue(prompt.contains("prompt 0 has") && prompt.contains("max_position_embeddings 512"), prompt);
            assertTrue(worker.alive() && worker.failure.get() == null, "the worker survived: " + worker.failure.get());
            assertEquals(3, worker.worker.processed());
            assertTrue(worker.worker.health().up(), worker.worker.health().toString());
        }
    }

    @Test
    void aWorkerThatCannotDeadLetterStopsConsumingAndSaysSo() throws Exception {
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null)) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();
            // an operator's mistake: the dead-letter subject holds a schema DeadLetter cannot evolve from
            registry.register(AvroSerdes.valueSubject(Topics.DEAD_LETTERS.name()), new Schema.Parser().parse(
                    "{\"type\": \"record\", \"name\": \"Other\", \"fields\": [{\"name\": \"x\", \"type\": \"int\"}]}"));
            ComponentTrial template = TrialPlanner.candidates(E2e.sweep("halt-sweep"), 0, List.of()).get(0);
            E2e.produceRaw(bootstrap, Topics.TRIALS.name(), "garbage/0", "not avro".getBytes(StandardCharsets.UTF_8));
            try (E2e.RunningWorker worker = new E2e.RunningWorker(cluster, registry, "halt-workers", "halting");
                 BoundedHttpServer http = WorkerCommand.healthServer(worker.worker, 0)) {
                Health health = E2e.awaitValue("the worker reports DOWN", E2e.TIMEOUT, () ->
                        java.util.Optional.of(worker.worker.health()).filter(h -> !h.up()));
                assertEquals("HALTED", health.state());
                String why = String.join("; ", health.problems());
                assertTrue(why.contains("key garbage/0") && why.contains("dead letter cannot be encoded"), why);

                HttpResponse<String> reply = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + http.port() + "/health")).GET().build(),
                        HttpResponse.BodyHandlers.ofString());
                assertEquals(503, reply.statusCode());
                JsonNode body = JSON.readTree(reply.body());
                assertEquals("DOWN", body.get("status").asText());
                assertTrue(body.get("problems").get(0).asText().contains("garbage/0"), reply.body());

                // it stays down without dying or retrying, takes no more work, and commits nothing
                send(registry, bootstrap, template);
                E2e.sleep(3000);
                assertTrue(worker.alive() && worker.failure.get() == null, "no crash: " + worker.failure.get());
                assertEquals(0, worker.worker.processed());
                assertEquals(List.of(), E2e.readAll(bootstrap, Topics.DIVERGENCES.name()));
                assertEquals(List.of(), E2e.readAll(bootstrap, Topics.DEAD_LETTERS.name()));
                try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
                    Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets("halt-workers")
                            .partitionsToOffsetAndMetadata().get();
                    assertTrue(committed.values().stream().allMatch(o -> o == null || o.offset() == 0), "" + committed);
                }
            }
        }
    }

    @Test
    void baselinesThatDoNotMatchAreRecomputed() throws Exception {
        SweepRequest sweep = E2e.sweep("bl-sweep", E2e.prompts(E2e.PROMPTS), 1);
        List<ComponentTrial> trials = TrialPlanner.candidates(sweep, 0, List.of());
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.Reference reference = new E2e.Reference(sweep.getPrompts())) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();
            String modelDigest = ModelFiles.resolve(E2e.tinyModel(), null).digest();
            int vocab = reference.engine.config().vocabSize();
            // shard 0: forged before baselines carried any identity; shard 1: the right identity and prompt ids,
            // continuations replaced by valid token ids, references to match them
            for (ComponentTrial shard : trials.subList(0, 2)) {
                List<List<Integer>> ids = shard.getPrompts().stream()
                        .map(p -> java.util.Arrays.stream(reference.engine.encode(p)).boxed().toList()).toList();
                List<List<Integer>> forged = shard.getPrompts().stream()
                        .map(p -> Collections.nCopies(E2e.TOKENS, 7 % vocab)).toList();
                BaseContinuation.Builder b = BaseContinuation.newBuilder().setPromptSetId(shard.getPromptSetId())
                        .setModel(shard.getModel()).setShard(shard.getShard()).setTokens(E2e.TOKENS).setPromptIds(ids)
                        .setContinuations(forged).setReferences(forged);
                if (shard.getShard() == 1) {
                    b.setModelDigest(modelDigest).setPromptsDigest(TrialWorker.promptsDigest(shard)).setWorkerId("evil");
                }
                E2e.produceRaw(bootstrap, Topics.BASELINES.name(), Topics.shardKey(shard.getPromptSetId(), shard.getShard()),
                        AvroSerdes.serializer(BaseContinuation.class, registry).serialize(Topics.BASELINES.name(), b.build()));
            }
            try (E2e.RunningWorker worker = new E2e.RunningWorker(cluster, registry, "bl-workers", "honest")) {
                new SweepPublisher(E2e.clientProps(cluster), registry).publish(sweep);
                Map<String, DivergenceResult> results = new java.util.TreeMap<>();
                E2e.await("every shard is scored", E2e.TIMEOUT, () -> {
                    results.putAll(E2e.latestByKey(E2e.readAll(bootstrap, Topics.DIVERGENCES.name(),
                            AvroSerdes.deserializer(DivergenceResult.class, registry))));
                    return results.size() == trials.size();
                });
                for (ComponentTrial shard : trials) {
                    DivergenceResult expected = reference.result(shard, "honest");
                    DivergenceResult got = results.get(Topics.shardKey(shard.getTrialId(), shard.getShard()));
                    assertEquals(expected.getFdt(), got.getFdt(), "FDT of " + shard.getComponent() + " shard "
                            + shard.getShard());
                    assertEquals(expected.getSdt(), got.getSdt());
                }
            }
            Map<String, BaseContinuation> baselines = E2e.latestByKey(E2e.readAll(bootstrap, Topics.BASELINES.name(),
                    AvroSerdes.deserializer(BaseContinuation.class, registry)));
            assertEquals(2, baselines.size());
            for (BaseContinuation b : baselines.values()) {
                assertEquals(modelDigest, b.getModelDigest(), "replaced by the worker's own");
                assertEquals("honest", b.getWorkerId());
                assertFalse(b.getContinuations().stream().allMatch(c -> c.stream().allMatch(t -> t == 7)));
            }
            assertNull(letters(bootstrap, registry), "nothing was dead-lettered");
        }
    }

    private static String letters(String bootstrap, SchemaRegistryClient registry) {
        List<String> reasons = new ArrayList<>();
        E2e.readAll(bootstrap, Topics.DEAD_LETTERS.name(), AvroSerdes.deserializer(DeadLetter.class, registry))
                .forEach(e -> reasons.add(e.getKey() + ": " + e.getValue().getReason()));
        return reasons.isEmpty() ? null : reasons.stream().collect(Collectors.joining("; "));
    }

    @Test
    void aModelWithNanWeightsIsDeadLetteredInsteadOfScoringPerfectly(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp)
            throws Exception {
        // a copy of the tiny model with one NaN in layer 0's down_proj: it used to score FDT = N everywhere
        java.nio.file.Path model = java.nio.file.Files.createDirectories(tmp.resolve("nan-llama"));
        try (var files = java.nio.file.Files.list(E2e.tinyModel())) {
            for (java.nio.file.Path f : files.toList()) {
                java.nio.file.Files.copy(f, model.resolve(f.getFileName()));
            }
        }
        java.nio.file.Path weights = model.resolve("model.safetensors");
        try (var ch = java.nio.channels.FileChannel.open(weights, java.nio.file.StandardOpenOption.READ,
                java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer length = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            ch.read(length, 0);
            long headerLength = length.flip().getLong();
            java.nio.ByteBuffer header = java.nio.ByteBuffer.allocate((int) headerLength);
            ch.read(header, 8);
            long begin = new ObjectMapper().readTree(header.array())
                    .path("model.layers.0.mlp.down_proj.weight").path("data_offsets").path(0).asLong();
            ch.write(java.nio.ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(Float.NaN).flip(),
                    8 + headerLength + begin);
        }
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.RunningWorker worker = new E2e.RunningWorker(cluster, E2e.registry(cluster), "nan-workers", "nan")) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();
            ComponentTrial template = TrialPlanner.candidates(E2e.sweep("nan-sweep"), 0, List.of()).get(0);
            send(registry, bootstrap, ComponentTrial.newBuilder(template).setTrialId("nan-model")
                    .setModel(model.toString()).build());
            E2e.await("the trial on NaN weights is dead-lettered", E2e.TIMEOUT, () -> !E2e.readAll(bootstrap,
                    Topics.DEAD_LETTERS.name(), AvroSerdes.deserializer(DeadLetter.class, registry)).isEmpty());
            String reason = E2e.latestByKey(E2e.readAll(bootstrap, Topics.DEAD_LETTERS.name(),
                    AvroSerdes.deserializer(DeadLetter.class, registry))).get("nan-model/0").getReason();
            assertTrue(reason.contains("non-finite"), reason);
            assertTrue(E2e.readAll(bootstrap, Topics.DIVERGENCES.name()).isEmpty(), "no result was published");
            assertTrue(worker.alive() && worker.failure.get() == null, "the worker survived: " + worker.failure.get());
        }
    }

    private static void send(SchemaRegistryClient registry, String bootstrap, ComponentTrial trial) {
        E2e.produceRaw(bootstrap, Topics.TRIALS.name(), Topics.shardKey(trial.getTrialId(), trial.getShard()),
                E2e.encode(registry, Topics.TRIALS.name(), trial));
    }
}
