package io.dtm.worker;

import io.dtm.schemas.Topic;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.BaseContinuation;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.IntStream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Deserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The base model's continuations per prompt shard, read from the compacted {@link Topics#BASELINES} topic: whichever
 * worker first meets a (model, prompt set, shard) computes and publishes them, every later worker reads them, so
 * greedy generation of the base model happens once per shard for the whole group.
 */
final class BaselineStore implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(BaselineStore.class);

    private final KafkaConsumer<String, byte[]> reader;
    private final Deserializer<BaseContinuation> deserializer;
    private final Map<String, BaseContinuation> table = new HashMap<>();

    BaselineStore(Map<String, Object> clientProps, Deserializer<BaseContinuation> deserializer) {
        Map<String, Object> props = new HashMap<>(clientProps);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.remove(ConsumerConfig.GROUP_ID_CONFIG);
        this.reader = new KafkaConsumer<>(props, Topics.BASELINES.keySerde().deserializer(),
                new ByteArrayDeserializer());
        this.deserializer = deserializer;
        Topics.BASELINES.assignFromBeginning(reader, Duration.ofSeconds(30));
    }

    /** The continuations for {@code key} ({@code promptSetId/shard}), after catching up with the topic. */
    Optional<BaseContinuation> get(String key) {
        Topic.readToEnd(reader, this::apply);
        return Optional.ofNullable(table.get(key));
    }

    /** Records what this worker just published, so it need not wait for its own write to come back. */
    void put(String key, BaseContinuation value) {
        table.put(key, value);
    }

    private void apply(ConsumerRecord<String, byte[]> r) {
        try {
            BaseContinuation value = deserializer.deserialize(r.topic(), r.value());
            if (value == null) {
                table.remove(r.key());
            } else {
                table.put(r.key(), value);
            }
        } catch (RuntimeException e) {
            // a bad baseline only costs a recomputation; the trial itself is unaffected
            log.warn("ignoring baseline {} at {}-{}@{}: it does not decode ({})", r.key(), r.topic(), r.partition(),
                    r.offset(), e.getMessage());
            table.remove(r.key());
        }
    }

    /**
     * Why {@code base} must not be used for this model and shard, or null if it may: it must name the model's content
     * digest and the shard's prompts digest, hold the prompts as this worker encodes them, and one continuation and
     * one reference row of N in-vocabulary tokens per prompt. (Whether its references are the model's own is checked
     * after the reference pass, which recomputes them.)
     */
    static String problem(BaseContinuation base, String modelDigest, String promptsDigest, List<int[]> promptIds,
                          int tokens, int vocabSize) {
        if (!base.getModelDigest().equals(modelDigest)) {
            return "it was computed for model content " + (base.getModelDigest().isEmpty() ? "(not stated)"
                    : base.getModelDigest()) + ", not " + modelDigest;
        }
        if (!base.getPromptsDigest().equals(promptsDigest)) {
            return "its prompts digest differs from the trial's";
        }
        if (base.getTokens() != tokens) {
            return "it has " + base.getTokens() + " tokens per prompt, not " + tokens;
        }
        if (base.getPromptIds().size() != promptIds.size()
                || !IntStream.range(0, promptIds.size()).allMatch(i ->
                        Arrays.equals(ints(base.getPromptIds().get(i)), promptIds.get(i)))) {
            return "its prompt token ids differ from this worker's encoding";
        }
        for (List<List<Integer>> rows : List.of(base.getContinuations(), base.getReferences())) {
            if (rows.size() != promptIds.size()) {
                return "it has " + rows.size() + " rows for " + promptIds.size() + " prompts";
            }
            for (List<Integer> row : rows) {
                if (row.size() != tokens || row.stream().anyMatch(id -> id < 0 || id >= vocabSize)) {
                    return "a row is not " + tokens + " token ids below " + vocabSize;
                }
            }
        }
        return null;
    }

    static int[] ints(List<Integer> row) {
        return row.stream().mapToInt(Integer::intValue).toArray();
    }

    static int[][] rows(List<List<Integer>> rows) {
        return rows.stream().map(BaselineStore::ints).toArray(int[][]::new);
    }

    @Override
    public void close() {
        reader.close();
    }
}
