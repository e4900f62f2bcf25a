package io.dtm.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.schemas.Topic;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.TrialKind;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.registry.SchemaRegistryClients;
import io.dtm.schemas.serde.AvroSerdes;
import io.dtm.schemas.serde.WireFormat;
import java.io.IOException;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EmbeddedClusterTest {

    static {
        // Before the first logger exists: a broker at INFO drowns the test output.
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    }

    private static final DivergenceResult RESULT = DivergenceResult.newBuilder()
            .setTrialId("t-1").setShard(1).setShardCount(2).setSweepId("s-1").setRound(3).setKind(TrialKind.SCHEDULE)
            .setFdt(List.of(64, 12)).setSdt(List.of(0.0, 7.5)).setWorkerId("w").setElapsedMs(99L).build();

    @Test
    void carriesAvroRecordsThroughTheRegistryAndCleansUp() throws Exception {
        String bootstrap;
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null)) {
            bootstrap = cluster.bootstrapServers();
            SchemaRegistryClient registry = SchemaRegistryClients.connect(cluster.registryUrl());

            RecordMetadata sent = produceInTransaction(cluster, registry, RESULT);
            ConsumerRecord<String, byte[]> raw = consumeOne(cluster, sent);
            assertEquals(RESULT, AvroSerdes.deserializer(DivergenceResult.class, registry)
                    .deserialize(Topics.DIVERGENCES.name(), raw.value()));
            assertEquals("t-1/1", raw.key());
            assertEquals(registry.latest(Topics.DIVERGENCES.name() + "-value").orElseThrow().id(),
                    WireFormat.schemaId(raw.value()));

            assertTopics(cluster.bootstrapServers());
            assertEquals(List.of(), Topics.create(
                    Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers()), 4, (short) 1),
                    "every topic exists already");
        }
        String[] hostPort = bootstrap.split(":");
        assertThrows(IOException.class, () -> new Socket(hostPort[0], Integer.parseInt(hostPort[1])).close(),
                "the broker stopped listening");
    }

    @Test
    void aDataDirectoryKeepsRecordsAndSchemaIdsAcrossRestarts(@TempDir Path dataDir) throws Exception {
        RecordMetadata sent;
        int id;
        try (EmbeddedCluster first = EmbeddedCluster.start(dataDir)) {
            SchemaRegistryClient registry = SchemaRegistryClients.connect(first.registryUrl());
            sent = produce(first, registry, RESULT);
            id = registry.latest(Topics.DIVERGENCES.name() + "-value").orElseThrow().id();
        }
        try (EmbeddedCluster second = EmbeddedCluster.start(dataDir)) {
            SchemaRegistryClient registry = SchemaRegistryClients.connect(second.registryUrl());
            assertEquals(id, registry.latest(Topics.DIVERGENCES.name() + "-value").orElseThrow().id());
            ConsumerRecord<String, byte[]> raw = consumeOne(second, sent);
            assertEquals(RESULT, AvroSerdes.deserializer(DivergenceResult.class, registry)
                    .deserialize(Topics.DIVERGENCES.name(), raw.value()));
        }
        assertTrue(dataDir.resolve("kraft").toFile().isDirectory(), "a given data directory is kept");
    }

    /**
     * Issue 8, item 4: a restarted {@code dtm broker --data-dir} came back on new ports while every client retried the
     * old ones, and one garbage record in the registry's store made the directory unbootable.
     */
    @Test
    void aDataDirectoryKeepsItsPortsAndSurvivesGarbageInTheSchemaStore(@TempDir Path dataDir) throws Exception {
        String bootstrap;
        String registryUrl;
        int id;
        try (EmbeddedCluster first = EmbeddedCluster.start(dataDir)) {
            bootstrap = first.bootstrapServers();
            registryUrl = first.registryUrl();
            SchemaRegistryClient registry = SchemaRegistryClients.connect(registryUrl);
            produce(first, registry, RESULT);
            id = registry.latest(Topics.DIVERGENCES.name() + "-value").orElseThrow().id();
            try (KafkaProducer<String, String> p = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                    bootstrap), new StringSerializer(), new StringSerializer())) {
                p.send(new ProducerRecord<>(Topics.SCHEMAS.name(), 0, "{\"keytype\": \"NOOP\"}", "not a registration")).get();
                p.send(new ProducerRecord<>(Topics.SCHEMAS.name(), 0, "x", "{\"subject\": \"s\", \"version\": 1}")).get();
            }
        }
        try (EmbeddedCluster second = EmbeddedCluster.start(dataDir)) {
            assertEquals(bootstrap, second.bootstrapServers(), "the broker comes back where its clients look");
            assertEquals(registryUrl, second.registryUrl());
            SchemaRegistryClient registry = SchemaRegistryClients.connect(second.registryUrl());
            assertEquals(id, registry.latest(Topics.DIVERGENCES.name() + "-value").orElseThrow().id(),
                    "the good registrations survive the garbage beside them");
        }
        int free;
        try (java.net.ServerSocket socket = new java.net.ServerSocket(0)) {
            free = socket.getLocalPort();
        }
        try (EmbeddedCluster explicit = EmbeddedCluster.start(null, free, 0)) {
            assertEquals("127.0.0.1:" + free, explicit.bootstrapServers());
            try (java.net.ServerSocket taken = new java.net.ServerSocket(0)) {
                IllegalStateException busy = assertThrows(IllegalStateException.class,
                        () -> EmbeddedCluster.start(null, 0, taken.getLocalPort()));
                assertTrue(busy.getMessage().contains(":" + taken.getLocalPort()), busy.getMessage());
            }
        }
    }

    /** Issue 8, item 7: the embedded broker and registry are reachable from this host only. */
    @Test
    void theEmbeddedStackListensOnLoopbackOnly() throws Exception {
        java.net.InetAddress external = java.util.Collections.list(java.net.NetworkInterface.getNetworkInterfaces())
                .stream().filter(i -> !isLoopback(i)).flatMap(i -> java.util.Collections.list(i.getInetAddresses())
                        .stream()).filter(a -> a instanceof java.net.Inet4Address).findFirst().orElse(null);
        org.junit.jupiter.api.Assumptions.assumeTrue(external != null, "this host has no non-loopback IPv4 address");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null)) {
            int broker = Integer.parseInt(cluster.bootstrapServers().substring(cluster.bootstrapServers().indexOf(':') + 1));
            int registry = java.net.URI.create(cluster.registryUrl()).getPort();
            for (int port : List.of(broker, registry)) {
                new Socket("127.0.0.1", port).close();
                assertThrows(IOException.class, () -> new Socket(external, port).close(),
                        "port " + port + " must not answer on " + external);
            }
        }
    }

    private static boolean isLoopback(java.net.NetworkInterface i) {
        try {
            return i.isLoopback() || !i.isUp();
        } catch (java.net.SocketException e) {
            return true;
        }
    }

    private static RecordMetadata produce(EmbeddedCluster cluster, SchemaRegistryClient registry,
                                          DivergenceResult value) throws Exception {
        Map<String, Object> props = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers(),
                ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, DivergenceResult> producer = new KafkaProducer<>(props, new StringSerializer(),
                AvroSerdes.serializer(DivergenceResult.class, registry))) {
            return producer.send(new ProducerRecord<>(Topics.DIVERGENCES.name(),
                    Topics.shardKey(value.getTrialId(), value.getShard()), value)).get();
        }
    }

    /** Exactly-once needs the single-broker transaction log settings; without them initTransactions times out. */
    private static RecordMetadata produceInTransaction(EmbeddedCluster cluster, SchemaRegistryClient registry,
                                                       DivergenceResult value) throws Exception {
        Map<String, Object> props = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers(),
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, "embedded-cluster-test",
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000);
        try (KafkaProducer<String, DivergenceResult> producer = new KafkaProducer<>(props, new StringSerializer(),
                AvroSerdes.serializer(DivergenceResult.class, registry))) {
            producer.initTransactions();
            producer.beginTransaction();
            var sent = producer.send(new ProducerRecord<>(Topics.DIVERGENCES.name(),
                    Topics.shardKey(value.getTrialId(), value.getShard()), value));
            producer.commitTransaction();
            return sent.get();
        }
    }

    private static ConsumerRecord<String, byte[]> consumeOne(EmbeddedCluster cluster, RecordMetadata sent) {
        TopicPartition partition = new TopicPartition(sent.topic(), sent.partition());
        Map<String, Object> props = Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers(),
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(props, new StringDeserializer(),
                new ByteArrayDeserializer())) {
            consumer.assign(List.of(partition));
            consumer.seek(partition, sent.offset());
            long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                    return record;
                }
            }
        }
        throw new AssertionError("record at " + sent + " did not come back");
    }

    private static void assertTopics(String bootstrap) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            List<Topic<String, ?>> expected = new ArrayList<>(Topics.ALL);
            expected.add(Topics.SCHEMAS);
            List<String> names = expected.stream().map(Topic::name).toList();
            Map<String, TopicDescription> described = admin.describeTopics(names).allTopicNames().get();
            List<ConfigResource> resources = names.stream()
                    .map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t)).toList();
            Map<ConfigResource, Config> configs = admin.describeConfigs(resources).all().get();
            for (Topic<String, ?> topic : expected) {
                int partitions = topic == Topics.SCHEMAS ? 1 : EmbeddedCluster.PARTITIONS;
                assertEquals(partitions, described.get(topic.name()).partitions().size(), topic.name());
                String policy = configs.get(new ConfigResource(ConfigResource.Type.TOPIC, topic.name()))
                        .get(TopicConfig.CLEANUP_POLICY_CONFIG).value();
                assertEquals(topic.compacted() ? "compact" : "delete", policy, topic.name());
            }
        }
    }
}
