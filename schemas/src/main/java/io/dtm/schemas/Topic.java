package io.dtm.schemas;

import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;

/**
 * One topic of the pipeline, everything about it in one place: its name, how its keys and values are serialized, and
 * how it is created (partitions unless a deployment says otherwise, cleanup policy, retention). {@link Topics} holds
 * them all; nothing else spells a topic name.
 *
 * @param <K> the key type
 * @param <V> the value type
 */
public final class Topic<K, V> {

    private final String name;
    private final Serde<K> keySerde;
    private final Function<SchemaRegistryClient, Serde<V>> valueSerde;
    private final int partitions;
    private final boolean compacted;
    private final Duration retention;

    private Topic(String name, Serde<K> keySerde, Function<SchemaRegistryClient, Serde<V>> valueSerde, int partitions,
                  boolean compacted, Duration retention) {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("a topic needs a name");
        }
        if (partitions < 1) {
            throw new IllegalArgumentException(name + ": partitions must be >= 1, got " + partitions);
        }
        if (compacted == (retention != null)) {
            throw new IllegalArgumentException(name + ": a compacted topic keeps every key's latest value, any other"
                    + " needs a retention");
        }
        if (retention != null && retention.isNegative()) {
            throw new IllegalArgumentException(name + ": retention must not be negative, got " + retention);
        }
        this.name = name;
        this.keySerde = Objects.requireNonNull(keySerde, "keySerde");
        this.valueSerde = Objects.requireNonNull(valueSerde, "valueSerde");
        this.partitions = partitions;
        this.compacted = compacted;
        this.retention = retention;
    }

    /** String keys and Avro values in the Confluent wire format; the latest value per key is the state. */
    static <V extends SpecificRecord> Topic<String, V> compacted(String name, Class<V> type, int partitions) {
        return new Topic<>(name, Serdes.String(), registry -> AvroSerdes.serde(type, registry), partitions, true, null);
    }

    /** String keys and Avro values in the Confluent wire format, deleted after {@code retention}. */
    static <V extends SpecificRecord> Topic<String, V> retained(String name, Class<V> type, int partitions,
                                                              Duration retention) {
        return new Topic<>(name, Serdes.String(), registry -> AvroSerdes.serde(type, registry), partitions, false,
                retention);
    }

    /** String keys and values, compacted: the schema registry's own store, which no registry can describe. */
    static Topic<String, String> compactedText(String name, int partitions) {
        return new Topic<>(name, Serdes.String(), registry -> Serdes.String(), partitions, true, null);
    }

    public String name() {
        return name;
    }

    public Serde<K> keySerde() {
        return keySerde;
    }

    /**
     * A new serde of this topic's values against {@code registry}. Whoever reads or writes the topic builds it once and
     * keeps it: the serializer caches the schema id it registered, the deserializer the writer schemas it resolved.
     */
    public Serde<V> valueSerde(SchemaRegistryClient registry) {
        return valueSerde.apply(registry);
    }

    /** Partitions a deployment gets unless it asks for others. */
    public int partitions() {
        return partitions;
    }

    /** Whether the latest value per key is the state ({@code cleanup.policy=compact}); otherwise records expire. */
    public boolean compacted() {
        return compacted;
    }

    /** The topic as {@code Admin.createTopics} takes it, with its cleanup policy and retention. */
    public NewTopic newTopic(int partitions, short replication) {
        return newTopic(partitions, replication, retention);
    }

    /** As {@link #newTopic(int, short)}, keeping records for {@code retention} (negative: forever) unless compacted. */
    public NewTopic newTopic(int partitions, short replication, Duration retention) {
        Map<String, String> configs = new HashMap<>();
        configs.put(TopicConfig.CLEANUP_POLICY_CONFIG,
                compacted ? TopicConfig.CLEANUP_POLICY_COMPACT : TopicConfig.CLEANUP_POLICY_DELETE);
        if (!compacted) {
            configs.put(TopicConfig.RETENTION_MS_CONFIG, String.valueOf(retention.isNegative() ? -1
                    : retention.toMillis()));
        }
        return new NewTopic(name, partitions, replication).configs(configs);
    }

    /** Assigns {@code consumer} every partition of this topic, positioned at the beginning. */
    public void assignFromBeginning(Consumer<?, ?> consumer, Duration timeout) {
        List<TopicPartition> all = consumer.partitionsFor(name, timeout).stream()
                .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
        consumer.assign(all);
        consumer.seekToBeginning(all);
    }

    /** Hands {@code each} every record of {@code consumer}'s assigned partitions up to their end as of this call. */
    public static <K, V> void readToEnd(Consumer<K, V> consumer,
                                        java.util.function.Consumer<ConsumerRecord<K, V>> each) {
        Map<TopicPartition, Long> end = consumer.endOffsets(consumer.assignment());
        while (end.entrySet().stream().anyMatch(e -> consumer.position(e.getKey()) < e.getValue())) {
            consumer.poll(Duration.ofMillis(200)).forEach(each);
        }
    }

    @Override
    public String toString() {
        return name;
    }
}
