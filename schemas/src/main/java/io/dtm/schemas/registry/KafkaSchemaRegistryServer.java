package io.dtm.schemas.registry;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.schemas.Topics;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The single-machine default schema registry: Confluent's REST API (see {@link HttpSchemaRegistryClient}), with the
 * registrations kept where Confluent keeps them, in a compacted one-partition Kafka topic ({@link Topics#SCHEMAS}).
 *
 * <p>On start it reads the topic to its end and rebuilds a {@link SchemaRegistryCore}, so a restarted registry serves
 * the ids it handed out before. A new version is written to the topic (acks=all, waited for) before it is answered,
 * so an id a producer has put in a record is never lost.
 *
 * <p><b>One writer at a time.</b> The registry reads the topic only when it starts and does not elect a leader as
 * Confluent's does: two registries running against the same cluster would hand out the same ids for different
 * schemas. Run one per cluster; restarting it, or starting another once it is gone, is safe.
 */
public final class KafkaSchemaRegistryServer implements AutoCloseable {

    /**
     * Optional entry of the Kafka properties given to {@link #start}: the replication factor of the store topic when
     * this registry creates it (default 1). It is not passed on to the Kafka clients.
     */
    public static final String REPLICATION_FACTOR_CONFIG = "dtm.registry.replication.factor";

    private static final Logger LOG = LoggerFactory.getLogger(KafkaSchemaRegistryServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration KAFKA_TIMEOUT = Duration.ofSeconds(30);
    private static final TopicPartition STORE = new TopicPartition(Topics.SCHEMAS.name(), 0);

    private final KafkaProducer<String, String> producer;
    private final RegistryHttpServer http;

    private KafkaSchemaRegistryServer(KafkaProducer<String, String> producer, RegistryHttpServer http) {
        this.producer = producer;
        this.http = http;
    }

    /**
     * Creates the store topic if it is missing, replays it, and serves the REST API on {@code host:port}.
     *
     * @param kafkaClientProps {@code bootstrap.servers} plus any security settings the cluster needs (SASL, TLS);
     *                         optionally {@link #REPLICATION_FACTOR_CONFIG}
     * @param host             the address to bind; {@code null} binds 127.0.0.1 only
     * @param port             the port to bind; 0 picks a free one (see {@link #url()})
     */
    public static KafkaSchemaRegistryServer start(Map<String, Object> kafkaClientProps, String host, int port) {
        Objects.requireNonNull(kafkaClientProps, "kafkaClientProps");
        Map<String, Object> client = new HashMap<>(kafkaClientProps);
        short replication = replicationFactor(client.remove(REPLICATION_FACTOR_CONFIG));
        if (client.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG) == null) {
            throw new IllegalArgumentException("kafka client properties lack " + AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG);
        }
        createStoreTopic(client, replication);
        SchemaRegistryCore core = new SchemaRegistryCore();
        int replayed = replay(client, core);
        KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(client));
        try {
            RegistryHttpServer http = RegistryHttpServer.start(core, created -> persist(producer, created), host, port);
            KafkaSchemaRegistryServer server = new KafkaSchemaRegistryServer(producer, http);
            LOG.info("schema registry at {} serves {} subjects ({} stored versions) from topic {}", server.url(),
                    core.subjects().size(), replayed, Topics.SCHEMAS);
            return server;
        } catch (RuntimeException e) {
            producer.close(Duration.ZERO);
            throw e;
        }
    }

    /** The base URL clients use, e.g. {@code http://127.0.0.1:40123}. */
    public String url() {
        return http.url();
    }

    @Override
    public void close() {
        http.close();
        producer.close(KAFKA_TIMEOUT);
    }

    private static void persist(KafkaProducer<String, String> producer, RegisteredSchema created) {
        ProducerRecord<String, String> record = new ProducerRecord<>(STORE.topic(), STORE.partition(),
                key(created.subject(), created.version()), value(created));
        try {
            producer.send(record).get(KAFKA_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while storing the registration", e);
        } catch (ExecutionException | TimeoutException | KafkaException e) {
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            throw new IllegalStateException("topic " + Topics.SCHEMAS + " did not take the registration: " + cause,
                    cause);
        }
    }

    /** Reads the store from the beginning to its current end; returns how many registrations it replayed. */
    private static int replay(Map<String, Object> client, SchemaRegistryCore core) {
        Map<String, Object> props = new HashMap<>(client);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "dtm-schema-registry-replay");
        int replayed = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.assign(List.of(STORE));
            consumer.seekToBeginning(List.of(STORE));
            long end = consumer.endOffsets(List.of(STORE), KAFKA_TIMEOUT).get(STORE);
            long deadline = System.nanoTime() + KAFKA_TIMEOUT.toNanos();
            while (consumer.position(STORE, KAFKA_TIMEOUT) < end) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("could not read topic " + Topics.SCHEMAS + " to offset " + end
                            + " within " + KAFKA_TIMEOUT.toSeconds() + " s");
                }
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
                    if (record.value() == null) {
                        continue;
                    }
                    RegisteredSchema registered;
                    try {
                        registered = parse(record);
                    } catch (IllegalArgumentException e) {
                        // As Confluent's registry does: one unreadable record must not make the whole store unusable.
                        LOG.warn("skipping record at offset {} of topic {}: not a schema registration ({})",
                                record.offset(), Topics.SCHEMAS, e.getMessage());
                        continue;
                    }
                    core.restore(registered);
                    replayed++;
                }
            }
        }
        return replayed;
    }

    private static void createStoreTopic(Map<String, Object> client, short replication) {
        try (Admin admin = Admin.create(client)) {
            admin.createTopics(List.of(Topics.SCHEMAS.newTopic(Topics.SCHEMAS.partitions(), replication)))
                    .all().get(KAFKA_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            awaitLeader(admin);
            LOG.info("created schema store topic {} (replication factor {})", Topics.SCHEMAS, replication);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw new IllegalStateException("cannot create schema store topic " + Topics.SCHEMAS + ": "
                        + e.getCause(), e.getCause());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topic " + Topics.SCHEMAS, e);
        } catch (TimeoutException e) {
            throw new IllegalStateException("Kafka at " + client.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG)
                    + " did not create topic " + Topics.SCHEMAS + " within " + KAFKA_TIMEOUT.toSeconds() + " s", e);
        }
    }

    /**
     * A created topic reaches the brokers' metadata a moment after the controller confirms it; waiting here keeps the
     * replay consumer from starting with a round of unknown-topic warnings.
     */
    private static void awaitLeader(Admin admin) throws InterruptedException, TimeoutException {
        long deadline = System.nanoTime() + KAFKA_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            try {
                if (admin.describeTopics(List.of(STORE.topic())).allTopicNames().get().get(STORE.topic())
                        .partitions().get(0).leader() != null) {
                    return;
                }
            } catch (ExecutionException e) {
                // not known to the broker yet
            }
            Thread.sleep(50);
        }
        throw new TimeoutException("topic " + Topics.SCHEMAS + " has no leader");
    }

    private static Map<String, Object> producerProps(Map<String, Object> client) {
        Map<String, Object> props = new HashMap<>();
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) KAFKA_TIMEOUT.toMillis());
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) KAFKA_TIMEOUT.toMillis() / 2);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, KAFKA_TIMEOUT.toMillis());
        props.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        props.putAll(client);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "dtm-schema-registry");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        return props;
    }

    private static short replicationFactor(Object configured) {
        if (configured == null) {
            return 1;
        }
        try {
            short factor = Short.parseShort(configured.toString().trim());
            if (factor >= 1) {
                return factor;
            }
        } catch (NumberFormatException e) {
            // falls through to the refusal below, which names the offending value
        }
        throw new IllegalArgumentException(REPLICATION_FACTOR_CONFIG + " must be a positive number, was '"
                + configured + "'");
    }

    /** Record key: the subject and version, as Confluent keys its {@code _schemas} topic. */
    static String key(String subject, int version) {
        return json(Map.of("keytype", "SCHEMA", "subject", subject, "version", version));
    }

    static String value(RegisteredSchema registered) {
        return json(Map.of("subject", registered.subject(), "version", registered.version(), "id", registered.id(),
                "schema", registered.schema().toString()));
    }

    /** @throws IllegalArgumentException naming what is wrong (never the record's text) when it is no registration */
    private static RegisteredSchema parse(ConsumerRecord<String, String> record) {
        JsonNode value;
        try {
            value = JSON.readTree(record.value());
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not JSON", e);
        }
        if (value == null || !value.isObject()) {
            throw new IllegalArgumentException("not a JSON object");
        }
        for (String field : Set.of("subject", "version", "id", "schema")) {
            if (!value.hasNonNull(field)) {
                throw new IllegalArgumentException("no '" + field + "'");
            }
        }
        if (!value.get("version").isInt() || !value.get("id").isInt()) {
            throw new IllegalArgumentException("'version' and 'id' must be integers");
        }
        try {
            return new RegisteredSchema(value.get("subject").asText(), value.get("version").intValue(),
                    value.get("id").intValue(), SchemaText.parse(value.get("schema").asText()));
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("its schema does not parse: " + e.getMessage(), e);
        }
    }

    private static String json(Map<String, Object> fields) {
        try {
            return JSON.writeValueAsString(new TreeMap<>(fields));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON", e);
        }
    }
}
