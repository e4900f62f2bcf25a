package io.dtm.aggregator;

import io.dtm.planner.StopReason;
import io.dtm.planner.TrialPlanner;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.HttpSchemaRegistryClient;
import io.dtm.schemas.registry.KafkaSchemaRegistryServer;
import io.dtm.schemas.registry.SchemaRegistryCore;
import io.dtm.schemas.serde.AvroSerdes;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;
import org.apache.kafka.streams.KafkaStreams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Properties;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The aggregator on a real single-node Kafka cluster with exactly-once processing: a sweep published by
 * {@link SweepPublisher}, results from a fake worker, the schedule read back in-process and over HTTP.
 */
class AggregatorAppTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static KafkaClusterTestKit cluster;

    @BeforeAll
    static void startKafka() throws Exception {
        cluster = new KafkaClusterTestKit.Builder(new TestKitNodes.Builder()
                .setCombined(true).setNumBrokerNodes(1).setNumControllerNodes(1).build())
                .setConfigProp("offsets.topic.replication.factor", "1")
                .setConfigProp("transaction.state.log.replication.factor", "1")
                .setConfigProp("transaction.state.log.min.isr", "1")
                .build();
        cluster.format();
        cluster.startup();
        cluster.waitForReadyBrokers();
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers()))) {
            // Two partitions, so the re-keying by sweep id really moves records between partitions.
            admin.createTopics(Topics.ALL.stream().map(t -> new NewTopic(t.name(), 2, (short) 1)).toList()).all().get();
        }
    }

    @AfterAll
    static void stopKafka() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void aSweepRoundIsDecidedMeasuredAndQueryable(@TempDir Path stateDir) throws Exception {
        SchemaRegistryCore registry = new SchemaRegistryCore();
        AggregatorApp.Config config = AggregatorApp.Config.builder(cluster.bootstrapServers(), registry)
                .stateDir(stateDir).httpBindHost("127.0.0.1").httpAdvertisedHost("127.0.0.1").build();
        SweepRequest sweep = AggregatorDriver.sweep().setRounds(1).build();
        Map<String, Object> kafka = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers());

        try (AggregatorApp app = AggregatorApp.start(config);
             KafkaConsumer<String, byte[]> trials = trialConsumer();
             KafkaProducer<String, DivergenceResult> worker = new KafkaProducer<>(Map.of(
                     ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers()), new StringSerializer(),
                     AvroSerdes.serializer(DivergenceResult.class, registry))) {
            await("the aggregator runs", () -> app.state() == KafkaStreams.State.RUNNING);
            new SweepPublisher(kafka, registry).publish(sweep);

            List<ComponentTrial> round0 = readTrials(trials, registry, 4);
            assertEquals(TrialPlanner.candidates(sweep, 0, List.of()), round0);
            for (ComponentTrial shard : round0) {
                worker.send(record(shard, "a".equals(shard.getComponent()) ? 8 : 3));
            }
            worker.flush();
            List<ComponentTrial> measure = readTrials(trials, registry, 2);
            assertEquals(TrialPlanner.scheduleMeasure(sweep, 0, List.of(new ScheduleEntry("a", "prune:0.5"))), measure);
            await("round 0 ranked", () -> app.queries().ranking("s1", OptionalInt.of(0))
                    .map(RankingView::decided).orElse(false));

            for (ComponentTrial shard : measure) {
                worker.send(record(shard, 6));
            }
            worker.flush();
            await("round 0 measured", () -> app.queries().schedule("s1").map(ScheduleView::finished).orElse(false));
            ScheduleView schedule = app.queries().schedule("s1").orElseThrow();
            assertEquals(6.0, schedule.steps().get(0).fdtm());
            assertEquals(StopReason.ROUNDS.code(), schedule.stopReason());

            HttpResponse<String> response = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                    "http://127.0.0.1:" + app.restAddress().port() + "/sweeps/s1/ranking")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode(), response.body());
            assertTrue(response.body().contains("\"component\":\"a\""), response.body());
            assertEquals(Optional.empty(), app.queries().ranking("unknown", OptionalInt.empty()));
        }
    }

    /**
     * Issue 8, item 1: Kafka Streams replaces a failed stream thread and keeps reporting RUNNING, so a thread that
     * fails over and over (here: the schema registry is gone, and every record needs it) used to look healthy.
     */
    @Test
    void aStreamThreadThatKeepsFailingTurnsHealthDown(@TempDir Path stateDir) throws Exception {
        Map<String, Object> kafka = Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers());
        KafkaSchemaRegistryServer registry = KafkaSchemaRegistryServer.start(kafka, "127.0.0.1", 0);
        byte[] sweep = AvroSerdes.serializer(SweepRequest.class, new HttpSchemaRegistryClient(registry.url()))
                .serialize(Topics.SWEEPS.name(), AggregatorDriver.sweep().setSweepId("s-health").build());
        AggregatorApp.Config config = AggregatorApp.Config.builder(cluster.bootstrapServers(),
                        new HttpSchemaRegistryClient(registry.url()))
                .applicationId("dtm-aggregator-health").stateDir(stateDir)
                // a replaced thread rejoins once its predecessor's session expired: the broker's minimum, for speed
                .clientProps(Map.of("session.timeout.ms", 6000, "heartbeat.interval.ms", 1000))
                .httpBindHost("127.0.0.1").httpAdvertisedHost("127.0.0.1").build();
        try (AggregatorApp app = AggregatorApp.start(config)) {
            await("the aggregator runs", () -> app.state() == KafkaStreams.State.RUNNING);
            await("it reports UP", () -> health(app).statusCode() == 200);

            registry.close();
            try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(Map.of(
                    ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers()), new StringSerializer(),
                    new org.apache.kafka.common.serialization.ByteArraySerializer())) {
                producer.send(new ProducerRecord<>(Topics.SWEEPS.name(), "s-health", sweep)).get();
            }
            await("it reports DOWN", () -> health(app).statusCode() == 503);
            HttpResponse<String> down = health(app);
            assertTrue(down.body().contains("stream threads failed"), down.body());
            assertTrue(down.body().contains("\"state\":\"" + app.state().name()), down.body());
        } finally {
            registry.close();
        }
    }

    private static HttpResponse<String> health(AggregatorApp app) {
        try {
            return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                    + app.restAddress().port() + "/health")).build(), HttpResponse.BodyHandlers.ofString());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static ProducerRecord<String, DivergenceResult> record(ComponentTrial shard, int fdt) {
        return new ProducerRecord<>(Topics.DIVERGENCES.name(), Topics.shardKey(shard.getTrialId(), shard.getShard()),
                AggregatorDriver.result(shard, shard.getPrompts().stream().mapToInt(p -> fdt).toArray()));
    }

    private static KafkaConsumer<String, byte[]> trialConsumer() {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "fake-workers");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(props, new StringDeserializer(),
                new ByteArrayDeserializer());
        consumer.subscribe(List.of(Topics.TRIALS.name()));
        return consumer;
    }

    /** Reads exactly {@code count} trial shards, ordered by component, then shard: the plan's order for these sweeps. */
    private static List<ComponentTrial> readTrials(KafkaConsumer<String, byte[]> consumer, SchemaRegistryCore registry,
                                                   int count) {
        Deserializer<ComponentTrial> deserializer = AvroSerdes.deserializer(ComponentTrial.class, registry);
        List<ComponentTrial> read = new ArrayList<>();
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (read.size() < count && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                read.add(deserializer.deserialize(r.topic(), r.value()));
            }
        }
        assertEquals(count, read.size(), "trial shards read");
        read.sort(Comparator.comparing((ComponentTrial t) -> t.getComponent() == null ? "" : t.getComponent())
                .thenComparingInt(ComponentTrial::getShard));
        return read;
    }

    private static void await(String what, Supplier<Boolean> condition) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            try {
                if (condition.get()) {
                    return;
                }
            } catch (QueryUnavailableException e) {
                // the stores are still being restored or assigned
            }
            Thread.sleep(100);
        }
        fail("timed out waiting until " + what);
    }
}
