package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.local.EmbeddedCluster;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.TrialKind;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import io.dtm.worker.TrialWorker;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * A trial that runs far longer than the group's session timeout must not get its worker expelled: heartbeats go on in
 * the background and {@code --max-trial-minutes} bounds the poll interval. The control shows the test can see an
 * expulsion: with a poll interval shorter than the trial, the group reassigns the trial and the other member scores it.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class LongTrialTest {

    /** brown-llama-8m, 96 prompts × 128 tokens in one shard: ~15 s with the model loaded cold, ~3 s warm. */
    private static final int PROMPTS = 96;
    private static final int TOKENS = 128;
    private static final long SESSION_TIMEOUT_MS = 6_000;

    @Test
    @Order(1) // first, so its trial includes the model's cold start and lasts well beyond the session timeout
    void aLongTrialKeepsItsWorkerInTheGroup() throws Exception {
        run("long-ok", Duration.ofMinutes(10), (workers, results) -> {
            E2e.await("the long trial's result", Duration.ofMinutes(3), () -> !results.get().isEmpty());
            E2e.sleep(2_000);
            List<DivergenceResult> committed = results.get();
            assertEquals(1, committed.size(), "read_committed sees one result: " + committed);
            assertTrue(committed.get(0).getElapsedMs() > SESSION_TIMEOUT_MS, "the trial must outlast the session"
                    + " timeout to prove anything: took " + committed.get(0).getElapsedMs() + " ms");
            assertEquals(1, workers.stream().mapToInt(TrialWorker::processed).sum(), "scored exactly once");
            assertEquals(0, workers.stream().mapToInt(TrialWorker::aborted).sum(), "no attempt was thrown away");
        });
    }

    @Test
    @Order(2)
    void controlAPollBoundShorterThanTheTrialGetsItsWorkersExpelled() throws Exception {
        run("long-expelled", Duration.ofSeconds(1), (workers, results) -> {
            // each attempt outlasts the bound, so the group moves the trial on and the attempt's commit is refused
            E2e.await("attempts aborted by both workers", Duration.ofMinutes(2),
                    () -> workers.stream().allMatch(w -> w.aborted() >= 1));
            assertTrue(results.get().isEmpty(), "no attempt may commit a result");
            assertEquals(0, workers.stream().mapToInt(TrialWorker::processed).sum());
        });
    }

    interface Check {
        void verify(List<TrialWorker> workers, java.util.function.Supplier<List<DivergenceResult>> results) throws Exception;
    }

    /** Publishes one long trial to a group of two workers with the given poll bound, then runs {@code check}. */
    private static void run(String id, Duration maxTrialTime, Check check) throws Exception {
        Path model = E2e.shared().resolve("models/brown-llama-8m");
        List<String> prompts = Files.readAllLines(E2e.shared().resolve("data/heldout-paragraphs.txt")).stream()
                .limit(PROMPTS).map(l -> String.join(" ", List.of(l.split(" ")).subList(0, Math.min(12, l.split(" ").length))))
                .toList();
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null)) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            ComponentTrial trial = ComponentTrial.newBuilder()
                    .setTrialId(id).setShard(0).setShardCount(1).setSweepId(id).setRound(0).setKind(TrialKind.CANDIDATE)
                    .setModel(model.toString()).setPromptSetId(id).setTokens(TOKENS)
                    .setComponent("model.layers.2.mlp.up_proj").setCompression("prune:0.5").setSchedule(List.of())
                    .setPromptOffset(0).setPrompts(prompts).setTrialsInRound(1).build();
            Map<String, Object> props = new HashMap<>(E2e.clientProps(cluster));
            props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, (int) SESSION_TIMEOUT_MS);
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1_000);
            // one shard a transaction: the poll bound is then the trial bound alone
            List<TrialWorker> workers = IntStream.range(0, 2).mapToObj(i -> new TrialWorker(new TrialWorker.Config(props,
                    registry, id + "-group", id + "-w" + i, null, E2e.cpu(), maxTrialTime, 1,
                    TrialWorker.Config.DEFAULT_CACHED_MODELS, TrialWorker.Config.DEFAULT_MAX_BATCH_BYTES,
                    Duration.ZERO))).toList();
            List<Thread> threads = TrialWorker.startThreads(workers);
            try {
                // both members joined before the trial exists, so a reassignment can only come from an expulsion
                E2e.sleep(3_000);
                E2e.produceRaw(cluster.bootstrapServers(), Topics.TRIALS.name(), Topics.shardKey(id, 0),
                        E2e.encode(registry, Topics.TRIALS.name(), trial));
                var deserializer = AvroSerdes.serde(DivergenceResult.class, registry).deserializer();
                check.verify(workers, () -> E2e.readAll(cluster.bootstrapServers(), Topics.DIVERGENCES.name(), deserializer)
                        .stream().map(Map.Entry::getValue).collect(Collectors.toList()));
            } finally {
                workers.forEach(TrialWorker::close);
                for (Thread t : threads) {
                    t.join(60_000);
                }
            }
        }
    }
}
