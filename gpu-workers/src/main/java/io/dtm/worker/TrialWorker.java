package io.dtm.worker;

import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.EngineOptions;
import io.dtm.engine.PromptSet;
import io.dtm.engine.Trial;
import io.dtm.engine.TrialScore;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.BaseContinuation;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.TrialKind;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.registry.SchemaRegistryException;
import io.dtm.schemas.serde.AvroSerdes;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One member of the GPU-worker consumer group: takes trial shards from {@link Topics#TRIALS}, scores them with the
 * divergence engine and writes {@link DivergenceResult}s. Scale out by starting more workers with the same group id.
 *
 * <p>Each trial is one Kafka transaction: the result (or dead letter, and any newly computed baseline) and the consumed
 * offset commit together, so a crash or rebalance mid-trial loses nothing (the shard is redelivered to another member)
 * and a result is never half-written. A redelivered shard produces a result with the same key, which the aggregator
 * treats as an overwrite. The poll interval allows for a long trial ({@code max.poll.records=1}, a generous
 * {@code max.poll.interval.ms}); liveness is carried by the consumer's background heartbeats.
 */
public final class TrialWorker implements Runnable, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(TrialWorker.class);
    private static final String SERVICE = "gpu-worker";

    /** Worker settings; {@code modelRoot} resolves relative model names in trials (null: relative to the cwd). */
    public record Config(Map<String, Object> clientProps, SchemaRegistryClient registry, String groupId, String workerId,
                         Path modelRoot, EngineOptions engine, Duration maxTrialTime, int cachedPromptSets) {
        public Config {
            if (!clientProps.containsKey(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG)) {
                throw new IllegalArgumentException("clientProps must name bootstrap.servers");
            }
            if (groupId == null || groupId.isBlank() || workerId == null || workerId.isBlank()) {
                throw new IllegalArgumentException("group id and worker id are required");
            }
            if (maxTrialTime.isNegative() || maxTrialTime.isZero()) {
                throw new IllegalArgumentException("max trial time must be positive");
            }
            if (cachedPromptSets < 1) {
                throw new IllegalArgumentException("at least one prompt set must stay cached");
            }
        }
    }

    private final Config config;
    private final KafkaConsumer<String, byte[]> consumer;
    private final KafkaProducer<String, byte[]> producer;
    private final BaselineStore baselines;
    private final Serde<ComponentTrial> trials;
    private final Serde<DivergenceResult> results;
    private final Serde<BaseContinuation> baselineSerde;
    private final Serde<DeadLetter> deadLetters;
    private final Map<String, DivergenceEngine> engines = new HashMap<>();
    private final PromptSetCache promptSets;
    private final AtomicBoolean running = new AtomicBoolean(true);
    private volatile int processed;
    private volatile int aborted;

    public TrialWorker(Config config) {
        // a worker that cannot use its device would dead-letter every trial it takes: fail before joining the group
        config.engine().resolveDevice();
        this.config = config;
        // --cache-mb bounds the worker's prepared sets together, not each one
        this.promptSets = new PromptSetCache(config.cachedPromptSets(), config.engine().cacheBudgetBytes());
        this.trials = AvroSerdes.serde(ComponentTrial.class, config.registry());
        this.results = AvroSerdes.serde(DivergenceResult.class, config.registry());
        this.baselineSerde = AvroSerdes.serde(BaseContinuation.class, config.registry());
        this.deadLetters = AvroSerdes.serde(DeadLetter.class, config.registry());

        Map<String, Object> c = new HashMap<>(config.clientProps());
        c.put(ConsumerConfig.GROUP_ID_CONFIG, config.groupId());
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, config.workerId());
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 1);
        c.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, (int) Math.min(Integer.MAX_VALUE, config.maxTrialTime().toMillis()));
        this.consumer = new KafkaConsumer<>(c, new StringDeserializer(), new ByteArrayDeserializer());

        Map<String, Object> p = new HashMap<>(config.clientProps());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "dtm-worker-" + config.workerId());
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, config.workerId() + "-producer");
        this.producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
        this.baselines = new BaselineStore(config.clientProps(), baselineSerde.deserializer());
    }

    /** Trial shards this worker has finished (results and dead letters). */
    public int processed() {
        return processed;
    }

    /**
     * Transactions this worker aborted, e.g. because the group moved its partition on (a trial that outlasted
     * {@code max.poll.interval.ms}): a count that keeps growing means trials take longer than the worker is allowed.
     */
    public int aborted() {
        return aborted;
    }

    @Override
    public void run() {
        try {
            producer.initTransactions();
            consumer.subscribe(List.of(Topics.TRIALS), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    log.info("{}: partitions revoked {}", config.workerId(), partitions);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    log.info("{}: partitions assigned {}", config.workerId(), partitions);
                }
            });
            while (running.get()) {
                for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                    if (!running.get()) {
                        break;
                    }
                    handle(record);
                }
            }
        } catch (WakeupException e) {
            if (running.get()) {
                throw e;
            }
        } catch (ProducerFencedException e) {
            log.error("{}: fenced by a newer worker with the same id; stopping", config.workerId());
        } finally {
            consumer.close();
            producer.close(Duration.ofSeconds(5));
            baselines.close();
            promptSets.close();
            engines.values().forEach(DivergenceEngine::close);
        }
    }

    /** Scores one record and commits its output and offset in one transaction. */
    private void handle(ConsumerRecord<String, byte[]> record) {
        List<ProducerRecord<String, byte[]>> out = new ArrayList<>();
        try {
            ComponentTrial trial = trials.deserializer().deserialize(record.topic(), record.value());
            if (trial == null) {
                throw new IllegalArgumentException("empty trial record");
            }
            out.addAll(score(trial));
        } catch (RuntimeException e) {
            if (SchemaRegistryException.isTransient(e)) {
                // not the record's fault: leave it uncommitted and try again after a pause
                log.warn("{}: schema registry unavailable ({}); retrying {} shortly", config.workerId(), e.getMessage(),
                        record.key());
                consumer.seek(new TopicPartition(record.topic(), record.partition()), record.offset());
                pause(Duration.ofSeconds(2));
                return;
            }
            String reason = e.getClass().getSimpleName() + ": " + e.getMessage();
            log.warn("{}: dead-lettering {}-{}@{} (key {}): {}", config.workerId(), record.topic(), record.partition(),
                    record.offset(), record.key(), reason);
            DeadLetter dl = DeadLetter.newBuilder()
                    .setSourceTopic(record.topic()).setPartition(record.partition()).setOffset(record.offset())
                    .setKey(record.key()).setPayload(record.value() == null ? null : ByteBuffer.wrap(record.value()))
                    .setReason(reason).setService(SERVICE).setFailedAtMs(System.currentTimeMillis()).build();
            out.add(encode(Topics.DEAD_LETTERS, record.key(), dl, deadLetters));
        }
        TopicPartition tp = new TopicPartition(record.topic(), record.partition());
        try {
            producer.beginTransaction();
            out.forEach(producer::send);
            producer.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(record.offset() + 1)),
                    consumer.groupMetadata());
            producer.commitTransaction();
            processed++;
        } catch (ProducerFencedException e) {
            throw e;
        } catch (KafkaException e) {
            // nothing of this trial is visible; rewind so this member (or the next owner) scores it again
            log.warn("{}: transaction for {} failed ({}); retrying", config.workerId(), record.key(), e.toString());
            producer.abortTransaction();
            aborted++;
            consumer.seek(tp, record.offset());
        }
    }

    private List<ProducerRecord<String, byte[]>> score(ComponentTrial t) {
        long start = System.nanoTime();
        List<ProducerRecord<String, byte[]>> out = new ArrayList<>();
        if (t.getPrompts().isEmpty()) {
            throw new IllegalArgumentException("trial " + t.getTrialId() + " shard " + t.getShard() + " has no prompts");
        }
        if (t.getTokens() < 1) {
            throw new IllegalArgumentException("trial " + t.getTrialId() + " asks for " + t.getTokens() + " tokens");
        }
        Trial changes = changes(t);
        DivergenceEngine engine = engine(t.getModel());
        changes.changes().keySet().forEach(engine::parameters); // unknown components fail here, before any work
        String baselineKey = Topics.shardKey(t.getPromptSetId(), t.getShard());
        PromptSet set = promptSets.get(baselineKey);
        if (set == null) {
            List<int[]> ids = t.getPrompts().stream().map(engine::encode).toList();
            BaseContinuation base = baselines.get(baselineKey)
                    .filter(b -> b.getTokens() == t.getTokens() && b.getContinuations().size() == ids.size())
                    .orElse(null);
            int[][] continuations;
            if (base == null) {
                log.info("{}: computing base continuations for {}", config.workerId(), baselineKey);
                continuations = engine.generate(ids, t.getTokens(), Trial.none(), DivergenceEngine.Progress.NONE);
            } else {
                continuations = base.getContinuations().stream()
                        .map(c -> c.stream().mapToInt(Integer::intValue).toArray()).toArray(int[][]::new);
            }
            set = engine.prepare(ids, continuations, DivergenceEngine.Progress.NONE);
            if (base == null) {
                BaseContinuation published = BaseContinuation.newBuilder()
                        .setPromptSetId(t.getPromptSetId()).setModel(t.getModel()).setShard(t.getShard())
                        .setTokens(t.getTokens()).setPromptIds(lists(ids.toArray(int[][]::new)))
                        .setContinuations(lists(continuations)).setReferences(lists(set.references())).build();
                baselines.put(baselineKey, published);
                out.add(encode(Topics.BASELINES, baselineKey, published, baselineSerde));
            }
            promptSets.put(baselineKey, set);
        }
        log.info("{}: scoring {} {} round {} shard {}/{}", config.workerId(), t.getKind(), describe(t), t.getRound(),
                t.getShard() + 1, t.getShardCount());
        TrialScore score = engine.score(set, changes);
        DivergenceResult result = DivergenceResult.newBuilder()
                .setTrialId(t.getTrialId()).setShard(t.getShard()).setShardCount(t.getShardCount())
                .setSweepId(t.getSweepId()).setRound(t.getRound()).setKind(t.getKind())
                .setComponent(t.getComponent()).setCompression(t.getCompression())
                .setTrialsInRound(t.getTrialsInRound()).setTokens(t.getTokens()).setPromptOffset(t.getPromptOffset())
                .setFdt(Arrays.stream(score.fdt()).boxed().toList())
                .setSdt(Arrays.stream(score.sdt()).boxed().toList())
                .setWorkerId(config.workerId()).setElapsedMs((System.nanoTime() - start) / 1_000_000).build();
        out.add(encode(Topics.DIVERGENCES, Topics.shardKey(t.getTrialId(), t.getShard()), result, results));
        return out;
    }

    private void pause(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            running.set(false);
        }
    }

    /** The trial's compressed model: its schedule plus, for a candidate, the candidate's action. */
    static Trial changes(ComponentTrial t) {
        Trial changes = Trial.none();
        for (ScheduleEntry e : t.getSchedule()) {
            changes = changes.plus(e.getComponent(), CompressionSpec.parse(e.getCompression()));
        }
        if (t.getKind() == TrialKind.CANDIDATE) {
            if (t.getComponent() == null || t.getCompression() == null) {
                throw new IllegalArgumentException("candidate trial " + t.getTrialId() + " names no component/compression");
            }
            changes = changes.plus(t.getComponent(), CompressionSpec.parse(t.getCompression()));
        }
        return changes;
    }

    private static String describe(ComponentTrial t) {
        return t.getKind() == TrialKind.CANDIDATE ? t.getComponent() + " " + t.getCompression()
                : "schedule of " + t.getSchedule().size() + " entries";
    }

    private DivergenceEngine engine(String model) {
        DivergenceEngine engine = engines.get(model);
        if (engine != null) {
            return engine;
        }
        Path dir = Path.of(model);
        if (!dir.isAbsolute() && config.modelRoot() != null && Files.isDirectory(config.modelRoot().resolve(model))) {
            dir = config.modelRoot().resolve(model);
        }
        try {
            engine = DivergenceEngine.load(dir, config.engine());
        } catch (Exception | LinkageError e) {
            throw new IllegalArgumentException("cannot load model '" + model + "': " + e.getMessage(), e);
        }
        log.info("{}: loaded {} on {}", config.workerId(), dir, engine.device());
        engines.put(model, engine);
        return engine;
    }

    private static List<List<Integer>> lists(int[][] rows) {
        return Arrays.stream(rows).map(r -> Arrays.stream(r).boxed().toList()).toList();
    }

    private static <T extends SpecificRecord> ProducerRecord<String, byte[]> encode(String topic, String key, T value,
                                                                                 Serde<T> serde) {
        return new ProducerRecord<>(topic, key, serde.serializer().serialize(topic, value));
    }

    /** Stops after the trial in progress; its transaction either commits or is redelivered. */
    @Override
    public void close() {
        running.set(false);
        consumer.wakeup();
    }
}
