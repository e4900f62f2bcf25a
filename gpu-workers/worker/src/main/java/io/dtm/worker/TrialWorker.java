package io.dtm.worker;

import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.EngineOptions;
import io.dtm.engine.PromptSet;
import io.dtm.engine.TextSet;
import io.dtm.engine.Trial;
import io.dtm.engine.TrialScore;
import io.dtm.schemas.BrokerWatch;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.ContentDigest;
import io.dtm.schemas.DeadLetters;
import io.dtm.schemas.TextScore;
import io.dtm.schemas.Topic;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.BaseContinuation;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.TextSums;
import io.dtm.schemas.avro.TrialKind;
import io.dtm.schemas.http.Health;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.registry.SchemaRegistryException;
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
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One member of the GPU-worker consumer group: takes trial shards from {@link Topics#TRIALS}, scores them with the
 * divergence engine and writes {@link DivergenceResult}s. Scale out by starting more workers with the same group id.
 *
 * <p>Results (or dead letters, and any newly computed baselines) and the consumed offsets commit together in one Kafka
 * transaction, so a crash or rebalance mid-trial loses nothing (the shards are redelivered to another member) and a
 * result is never half-written. A redelivered shard produces a result with the same key, which the aggregator treats as
 * an overwrite. One transaction covers the shards scored within {@link Config#commitInterval()}: a transaction costs
 * about as much as a 1B-parameter trial shard on a GPU (NOTES.md), so one per shard would double a fast sweep. The poll
 * interval allows for a long trial (a generous {@code max.poll.interval.ms}); liveness is carried by the consumer's
 * background heartbeats.
 */
public final class TrialWorker implements Runnable, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(TrialWorker.class);
    private static final String SERVICE = "gpu-worker";
    /** Every worker's transactional id starts so; the rest is its worker id. */
    public static final String TRANSACTIONAL_ID_PREFIX = "dtm-worker-";
    /**
     * Records one poll may return. Those a poll's commit interval leaves unscored are fetched again, so a few dozen
     * (a second of 1B-model shards on a GPU) keep that cheap while amortizing the transaction.
     */
    static final int MAX_POLL_RECORDS = 32;

    /**
     * Worker settings.
     *
     * @param modelRoot        confines the models trials may name to this directory (links followed); null: any path
     *                         the worker can read, for a trusted single machine
     * @param cachedPromptSets prepared prompt sets kept at once (all of them within the engine's cache budget)
     * @param cachedModels     models kept loaded at once, least recently used unloaded first
     * @param maxBatchBytes    the most memory one forward batch of a trial may need (see {@link TrialLimits})
     * @param commitInterval   shards scored within this time commit in one transaction; zero: one transaction a shard
     */
    public record Config(Map<String, Object> clientProps, SchemaRegistryClient registry, String groupId, String workerId,
                         Path modelRoot, EngineOptions engine, Duration maxTrialTime, int cachedPromptSets,
                         int cachedModels, long maxBatchBytes, Duration commitInterval) {

        public static final String DEFAULT_GROUP = "dtm-workers";
        /** Long enough for a trial shard of a large model on a slow device; the group reassigns a longer one. */
        public static final long DEFAULT_MAX_TRIAL_MINUTES = 60;
        public static final int DEFAULT_CACHED_PROMPT_SETS = 4;
        public static final int DEFAULT_CACHED_MODELS = 2;
        public static final long DEFAULT_MAX_BATCH_BYTES = 8L << 30;
        public static final long DEFAULT_COMMIT_INTERVAL_MS = 1000;

        public Config {
            if (!clientProps.containsKey(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG)) {
                throw new IllegalArgumentException("clientProps must name bootstrap.servers");
            }
            if (groupId == null || groupId.isBlank() || workerId == null || workerId.isBlank()) {
                throw new IllegalArgumentException("group id and worker id are required");
            }
            if (modelRoot != null && !Files.isDirectory(modelRoot)) {
                throw new IllegalArgumentException("model root " + modelRoot + " is not a directory");
            }
            if (maxTrialTime.isNegative() || maxTrialTime.isZero()) {
                throw new IllegalArgumentException("max trial time must be positive");
            }
            if (cachedPromptSets < 1) {
                throw new IllegalArgumentException("at least one prompt set must stay cached");
            }
            if (cachedModels < 1) {
                throw new IllegalArgumentException("at least one model must stay loaded");
            }
            if (maxBatchBytes < 1) {
                throw new IllegalArgumentException("the memory a trial may use must be positive");
            }
            if (commitInterval.isNegative()) {
                throw new IllegalArgumentException("the commit interval must not be negative");
            }
        }

        /** With the default model cache, trial memory limit and commit interval. */
        public Config(Map<String, Object> clientProps, SchemaRegistryClient registry, String groupId, String workerId,
                      Path modelRoot, EngineOptions engine, Duration maxTrialTime, int cachedPromptSets) {
            this(clientProps, registry, groupId, workerId, modelRoot, engine, maxTrialTime, cachedPromptSets,
                    DEFAULT_CACHED_MODELS, DEFAULT_MAX_BATCH_BYTES, Duration.ofMillis(DEFAULT_COMMIT_INTERVAL_MS));
        }

        /** Every default: the group {@value #DEFAULT_GROUP}, {@value #DEFAULT_MAX_TRIAL_MINUTES} minutes a trial. */
        public static Config defaults(Map<String, Object> clientProps, SchemaRegistryClient registry, String workerId,
                                      Path modelRoot, EngineOptions engine) {
            return new Config(clientProps, registry, DEFAULT_GROUP, workerId, modelRoot, engine,
                    Duration.ofMinutes(DEFAULT_MAX_TRIAL_MINUTES), DEFAULT_CACHED_PROMPT_SETS);
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
    private final ModelCache models;
    private final PromptSetCache promptSets;
    private final BrokerWatch broker;
    private final AtomicBoolean running = new AtomicBoolean(true);
    /** Why this worker stopped consuming, or null while it consumes. */
    private volatile String halted;
    private volatile int processed;
    private volatile int aborted;

    public TrialWorker(Config config) {
        // a worker that cannot use its device would dead-letter every trial it takes: fail before joining the group
        config.engine().resolveDevice();
        this.config = config;
        // --cache-mb bounds the worker's prepared sets together, not each one
        this.promptSets = new PromptSetCache(config.cachedPromptSets(), config.engine().cacheBudgetBytes());
        this.models = new ModelCache(config.modelRoot(), config.engine(), config.cachedModels(),
                model -> promptSets.evict(model.id() + "/"));
        this.trials = Topics.TRIALS.valueSerde(config.registry());
        this.results = Topics.DIVERGENCES.valueSerde(config.registry());
        this.baselineSerde = Topics.BASELINES.valueSerde(config.registry());
        this.deadLetters = Topics.DEAD_LETTERS.valueSerde(config.registry());

        Map<String, Object> c = new HashMap<>(config.clientProps());
        c.put(ConsumerConfig.GROUP_ID_CONFIG, config.groupId());
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, config.workerId());
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, config.commitInterval().isZero() ? 1 : MAX_POLL_RECORDS);
        // a poll's work stops at the first shard that starts after the commit interval
        c.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, (int) Math.min(Integer.MAX_VALUE,
                config.maxTrialTime().plus(config.commitInterval()).toMillis()));
        this.consumer = new KafkaConsumer<>(c, Topics.TRIALS.keySerde().deserializer(), new ByteArrayDeserializer());

        Map<String, Object> p = new HashMap<>(config.clientProps());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, TRANSACTIONAL_ID_PREFIX + config.workerId());
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, config.workerId() + "-producer");
        this.producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
        this.baselines = new BaselineStore(config.clientProps(), baselineSerde.deserializer());
        this.broker = BrokerWatch.start(config.clientProps(), BrokerWatch.DEFAULT_INTERVAL);
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

    /**
     * DOWN once this worker stopped consuming (a record it could not even dead-letter), while the Kafka cluster does
     * not answer, and after it was closed.
     */
    public Health health() {
        List<String> problems = new ArrayList<>();
        String why = halted;
        if (why != null) {
            problems.add(why);
        }
        broker.problem().ifPresent(problems::add);
        if (!running.get()) {
            problems.add("stopped");
        }
        return new Health(why != null ? "HALTED" : running.get() ? "CONSUMING" : "STOPPED", problems);
    }

    @Override
    public void run() {
        try {
            producer.initTransactions();
            consumer.subscribe(List.of(Topics.TRIALS.name()), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    log.info("{}: partitions revoked {}", config.workerId(), partitions);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    log.info("{}: partitions assigned {}", config.workerId(), partitions);
                    if (halted != null) {
                        consumer.pause(partitions);
                    }
                }
            });
            while (running.get()) {
                // a halted worker keeps polling its paused partitions: it stays in the group, so the record it could
                // not dead-letter is not handed to the next worker to fail on in turn
                process(consumer.poll(Duration.ofMillis(200)));
            }
        } catch (WakeupException e) {
            if (running.get()) {
                throw e;
            }
        } catch (ProducerFencedException e) {
            log.error("{}: fenced by a newer worker with the same id; stopping", config.workerId());
        } finally {
            running.set(false);
            consumer.close();
            producer.close(Duration.ofSeconds(5));
            baselines.close();
            broker.close();
            promptSets.close();
            models.close();
        }
    }

    /**
     * Scores a poll's records in order and commits them in transactions of {@link Config#commitInterval()}. It stops
     * at the first record that starts after the interval, at one it must retry later, and when the worker stops or
     * halts; every partition is then sought back to its first uncommitted record, so nothing is skipped and a poll's
     * work stays within the poll interval.
     */
    private void process(ConsumerRecords<String, byte[]> polled) {
        if (polled.isEmpty()) {
            return;
        }
        Map<TopicPartition, Long> uncommitted = new HashMap<>();
        polled.partitions().forEach(tp -> uncommitted.put(tp, polled.records(tp).get(0).offset()));
        Batch batch = new Batch();
        for (ConsumerRecord<String, byte[]> record : polled) {
            if (!running.get() || halted != null || batch.closed(config.commitInterval())) {
                break;
            }
            List<ProducerRecord<String, byte[]>> out = outputs(record);
            if (out == null) {
                break;
            }
            batch.add(record, out);
        }
        if (!batch.records.isEmpty()) {
            long scored = System.nanoTime();
            if (commit(batch, uncommitted)) {
                log.info("{}: committed {} shards (scored in {} ms, committed in {} ms)", config.workerId(),
                        batch.records.size(), (scored - batch.started) / 1_000_000,
                        (System.nanoTime() - scored) / 1_000_000);
            }
        }
        uncommitted.forEach((tp, offset) -> {
            List<ConsumerRecord<String, byte[]>> records = polled.records(tp);
            if (offset <= records.get(records.size() - 1).offset()) {
                consumer.seek(tp, offset);
            }
        });
    }

    /** The records scored since a transaction's start and what each one writes. */
    private static final class Batch {
        final long started = System.nanoTime();
        final List<ConsumerRecord<String, byte[]>> records = new ArrayList<>();
        final List<List<ProducerRecord<String, byte[]>>> outputs = new ArrayList<>();

        void add(ConsumerRecord<String, byte[]> record, List<ProducerRecord<String, byte[]>> out) {
            records.add(record);
            outputs.add(out);
        }

        /** Whether the batch takes no more records: it has some, and the interval has passed since the poll. */
        boolean closed(Duration interval) {
            return !records.isEmpty() && System.nanoTime() - started >= interval.toNanos();
        }
    }

    /**
     * What one record writes: its result, or its dead letter. Whatever goes wrong with the record, an {@link Error}
     * such as {@link OutOfMemoryError} included, it is dead-lettered, so it cannot take down every worker that picks it
     * up. Null when the record must wait: the registry is away (retry later) or even its dead letter cannot be
     * encoded (the worker halts).
     */
    private List<ProducerRecord<String, byte[]>> outputs(ConsumerRecord<String, byte[]> record) {
        try {
            ComponentTrial trial = trials.deserializer().deserialize(record.topic(), record.value());
            if (trial == null) {
                throw new IllegalArgumentException("empty trial record");
            }
            return score(trial);
        } catch (RuntimeException | Error e) {
            if (SchemaRegistryException.isTransient(e)) {
                retryLater(record, "schema registry unavailable (" + e.getMessage() + ")");
                return null;
            }
            return deadLetter(record, e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    /**
     * Commits a batch in one transaction, moving {@code uncommitted} past what it committed; true when every record of
     * it is committed. When that cannot ever succeed (an output too large, a topic not allowed), the records commit one
     * by one, so only the one at fault is dead-lettered. On any other failure nothing of the batch is visible and its
     * records are taken again.
     */
    private boolean commit(Batch batch, Map<TopicPartition, Long> uncommitted) {
        if (batch.records.size() > 1) {
            KafkaException failure = transact(batch.records, batch.outputs.stream().flatMap(List::stream).toList());
            if (failure == null) {
                batch.records.forEach(r -> uncommitted.put(new TopicPartition(r.topic(), r.partition()), r.offset() + 1));
                return true;
            }
            if (halted != null) {
                return false;
            }
            if (unwritable(failure) == null) {
                log.warn("{}: transaction for {} shards from {} failed ({}); retrying", config.workerId(),
                        batch.records.size(), batch.records.get(0).key(), failure.toString());
                return false;
            }
        }
        for (int i = 0; i < batch.records.size(); i++) {
            ConsumerRecord<String, byte[]> record = batch.records.get(i);
            if (!commitAlone(record, batch.outputs.get(i))) {
                return false;
            }
            uncommitted.put(new TopicPartition(record.topic(), record.partition()), record.offset() + 1);
        }
        return true;
    }

    /** Commits one record's output; if it can never be written, its dead letter instead. True when committed. */
    private boolean commitAlone(ConsumerRecord<String, byte[]> record, List<ProducerRecord<String, byte[]>> out) {
        KafkaException failure = transact(List.of(record), out);
        if (failure == null) {
            return true;
        }
        if (halted != null) {
            return false;
        }
        Throwable cause = unwritable(failure);
        if (cause == null) {
            // nothing of this trial is visible; this member (or the next owner) scores it again
            log.warn("{}: transaction for {} failed ({}); retrying", config.workerId(), record.key(), failure.toString());
            return false;
        }
        if (out.stream().anyMatch(r -> r.topic().equals(Topics.DEAD_LETTERS.name()))) {
            halt(record, "its dead letter cannot be written: " + cause);
            return false;
        }
        List<ProducerRecord<String, byte[]>> letter = deadLetter(record, "cannot write the result: " + cause);
        if (letter == null) {
            return false;
        }
        KafkaException again = transact(List.of(record), letter);
        if (again != null && halted == null) {
            halt(record, "its dead letter cannot be written: " + again);
        }
        return again == null;
    }

    /** The record's dead letter, encoded; null when even that failed (the worker then retries later or halts). */
    private List<ProducerRecord<String, byte[]>> deadLetter(ConsumerRecord<String, byte[]> record, String reason) {
        log.warn("{}: dead-lettering {}-{}@{} (key {}): {}", config.workerId(), record.topic(), record.partition(),
                record.offset(), record.key(), reason);
        DeadLetter dl = DeadLetters.of(SERVICE, record.topic(), record.partition(), record.offset(), record.key(),
                record.value(), reason, System.currentTimeMillis());
        try {
            return List.of(encode(Topics.DEAD_LETTERS, record.key(), dl, deadLetters.serializer()));
        } catch (RuntimeException e) {
            if (SchemaRegistryException.isTransient(e)) {
                retryLater(record, "schema registry unavailable for its dead letter (" + e.getMessage() + ")");
            } else {
                halt(record, "its dead letter cannot be encoded: " + e);
            }
            return null;
        }
    }

    /** Writes {@code out} and the offsets past {@code records} in one transaction; the failure, or null. */
    private KafkaException transact(List<ConsumerRecord<String, byte[]>> records,
                                    List<ProducerRecord<String, byte[]>> out) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        records.forEach(r -> offsets.merge(new TopicPartition(r.topic(), r.partition()),
                new OffsetAndMetadata(r.offset() + 1), (a, b) -> a.offset() >= b.offset() ? a : b));
        try {
            producer.beginTransaction();
            out.forEach(producer::send);
            producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
            producer.commitTransaction();
            processed += records.size();
            return null;
        } catch (ProducerFencedException e) {
            throw e;
        } catch (KafkaException e) {
            aborted++;
            try {
                producer.abortTransaction();
            } catch (KafkaException fatal) {
                halt(records.get(0), "its transaction failed (" + e + ") and the producer cannot continue (" + fatal
                        + ")");
            }
            return e;
        }
    }

    /**
     * Why a write can never succeed, however often it is retried (not allowed, or too large), from the failure's
     * causes: the producer may report it wrapped ("in an error state") depending on which call saw it first. Null when
     * a retry may succeed.
     */
    private static Throwable unwritable(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof AuthorizationException || t instanceof RecordTooLargeException
                    || t instanceof RecordBatchTooLargeException || t instanceof InvalidTopicException) {
                return t;
            }
        }
        return null;
    }

    /** Not the record's fault: leave it uncommitted and take it again after a pause. */
    private void retryLater(ConsumerRecord<String, byte[]> record, String why) {
        log.warn("{}: {}; retrying {} shortly", config.workerId(), why, record.key());
        pause(Duration.ofSeconds(2));
    }

    /**
     * Stops consuming, loudly: the record stays uncommitted, every partition is paused, health turns DOWN. The process
     * stays up, so nothing restarts it into the same record again and again.
     */
    private void halt(ConsumerRecord<String, byte[]> record, String why) {
        halted = "stopped consuming at " + record.topic() + "-" + record.partition() + "@" + record.offset() + " (key "
                + record.key() + "): " + why;
        log.error("{}: {}. The record stays uncommitted and this worker's partitions are paused; fix the cause and"
                + " restart the worker.", config.workerId(), halted);
        consumer.seek(new TopicPartition(record.topic(), record.partition()), record.offset());
        consumer.pause(consumer.assignment());
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
        ModelCache.Model model = models.get(t.getModel());
        DivergenceEngine engine = model.engine();
        Trial changes = changes(t, engine);
        changes.changes().keySet().forEach(engine::parameters); // unknown components fail here, before any work
        TrialLimits.checkTokens(t, engine.config());
        String promptsDigest = promptsDigest(t);
        // filed under the prompts' own digest: a trial cannot reuse another shard's set by naming its promptSetId
        String setKey = model.id() + "/" + promptsDigest;
        PromptSet set = promptSets.get(setKey);
        if (set == null) {
            set = prepare(t, model, promptsDigest, out);
            promptSets.put(setKey, set);
        }
        log.info("{}: scoring {} {} round {} shard {}/{}", config.workerId(), t.getKind(), describe(t), t.getRound(),
                t.getShard() + 1, t.getShardCount());
        TrialScore score = engine.score(set, changes);
        TextSums text = t.getText().isEmpty() ? null : scoreText(t, engine, changes, set);
        DivergenceResult result = DivergenceResult.newBuilder()
                .setTrialId(t.getTrialId()).setShard(t.getShard()).setShardCount(t.getShardCount())
                .setSweepId(t.getSweepId()).setRound(t.getRound()).setKind(t.getKind())
                .setComponent(t.getComponent()).setCompression(t.getCompression())
                .setTrialsInRound(t.getTrialsInRound()).setTokens(t.getTokens()).setPromptOffset(t.getPromptOffset())
                .setFdt(Arrays.stream(score.fdt()).boxed().toList())
                .setSdt(Arrays.stream(score.sdt()).boxed().toList())
                .setWorkerId(config.workerId()).setElapsedMs((System.nanoTime() - start) / 1_000_000)
                .setText(text)
                .setSchedule(t.getKind() == TrialKind.BASELINE ? entries(changes) : new ArrayList<>())
                .build();
        out.add(encode(Topics.DIVERGENCES, Topics.shardKey(t.getTrialId(), t.getShard()), result, results.serializer()));
        return out;
    }

    /**
     * Prepares the shard's prompt set from the shared baseline when one matches this model and these prompts, and
     * its references are what this worker's own reference pass computes; otherwise computes the baseline (adding it
     * to {@code out}, to be published with the result).
     */
    private PromptSet prepare(ComponentTrial t, ModelCache.Model model, String promptsDigest,
                              List<ProducerRecord<String, byte[]>> out) {
        DivergenceEngine engine = model.engine();
        List<int[]> ids = t.getPrompts().stream().map(engine::encode).toList();
        TrialLimits.check(t, ids, engine.config(), engine.dtypeName(), config.engine().batchSize(),
                config.maxBatchBytes());
        String baselineKey = Topics.shardKey(t.getPromptSetId(), t.getShard());
        BaseContinuation base = baselines.get(baselineKey).orElse(null);
        if (base != null) {
            String problem = BaselineStore.problem(base, model.digest(), promptsDigest, ids, t.getTokens(),
                    engine.config().vocabSize());
            if (problem == null) {
                PromptSet set = engine.prepare(ids, BaselineStore.rows(base.getContinuations()),
                        DivergenceEngine.Progress.NONE);
                if (Arrays.deepEquals(set.references(), BaselineStore.rows(base.getReferences()))) {
                    return set;
                }
                set.close();
                problem = "its references are not what this worker's reference pass computes";
            }
            log.warn("{}: rejecting baseline {} from worker '{}': {}; recomputing it", config.workerId(), baselineKey,
                    base.getWorkerId(), problem);
        }
        log.info("{}: computing base continuations for {}", config.workerId(), baselineKey);
        int[][] continuations = engine.generate(ids, t.getTokens(), Trial.none(), DivergenceEngine.Progress.NONE);
        PromptSet set = engine.prepare(ids, continuations, DivergenceEngine.Progress.NONE);
        try {
            BaseContinuation published = BaseContinuation.newBuilder()
                    .setPromptSetId(t.getPromptSetId()).setModel(t.getModel()).setShard(t.getShard())
                    .setTokens(t.getTokens()).setPromptIds(lists(ids.toArray(int[][]::new)))
                    .setContinuations(lists(continuations)).setReferences(lists(set.references()))
                    .setModelDigest(model.digest()).setPromptsDigest(promptsDigest).setWorkerId(config.workerId())
                    .build();
            out.add(encode(Topics.BASELINES, baselineKey, published, baselineSerde.serializer()));
            baselines.put(baselineKey, published);
            return set;
        } catch (RuntimeException e) {
            set.close();
            throw e;
        }
    }

    /** The digest a baseline of this shard carries: its prompts, in order, and the tokens N. */
    public static String promptsDigest(ComponentTrial t) {
        ContentDigest digest = new ContentDigest().add("baseline prompts").add(t.getTokens()).add(t.getPrompts().size());
        t.getPrompts().forEach(digest::add);
        return digest.hex();
    }

    private void pause(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            running.set(false);
        }
    }

    /**
     * The trial's compressed model: its schedule plus, for a candidate, the candidate's action. The {@code global}
     * baseline's schedule names the components and their overall sparsity; one magnitude threshold over all of them
     * decides each one's share, from the weights (dtm-spec "Target allocation").
     */
    static Trial changes(ComponentTrial t, DivergenceEngine engine) {
        Trial changes = Trial.none();
        for (ScheduleEntry e : t.getSchedule()) {
            changes = changes.plus(e.getComponent(), CompressionSpec.parse(e.getCompression()));
        }
        return switch (t.getKind()) {
            case CANDIDATE -> {
                if (t.getComponent() == null || t.getCompression() == null) {
                    throw new IllegalArgumentException("candidate trial " + t.getTrialId()
                            + " names no component/compression");
                }
                yield changes.plus(t.getComponent(), CompressionSpec.parse(t.getCompression()));
            }
            case SCHEDULE -> changes;
            case BASELINE -> switch (String.valueOf(t.getComponent())) {
                case "uniform" -> changes;
                case "global" -> globalMagnitude(t, engine, changes);
                default -> throw new IllegalArgumentException("baseline trial " + t.getTrialId()
                        + " names an unknown baseline '" + t.getComponent() + "' (expected uniform or global)");
            };
        };
    }

    /**
     * One threshold over the schedule's components at its overall sparsity {@code Σ n_c s_c / Σ n_c}; ties go by the
     * model's component order, as the spec has it, not by the schedule's (alphabetical) one.
     */
    private static Trial globalMagnitude(ComponentTrial t, DivergenceEngine engine, Trial named) {
        Map<String, CompressionSpec> given = named.changes();
        List<String> ordered = engine.config().componentNames().stream().filter(given::containsKey).toList();
        if (ordered.size() != given.size() || given.values().stream().anyMatch(c -> !c.isPrune())) {
            throw new IllegalArgumentException("global baseline trial " + t.getTrialId() + " must prune linear"
                    + " components of the model, got " + given);
        }
        double zeros = 0;
        double params = 0;
        for (String c : ordered) {
            zeros += given.get(c).sparsity() * engine.parameters(c);
            params += engine.parameters(c);
        }
        return new Trial(engine.globalMagnitudeSchedule(zeros / params, ordered));
    }

    /**
     * The trial's text metrics; the text is prepared for this trial alone (one base pass over it, what scoring it
     * costs anyway: a sweep has only a few schedule trials).
     */
    private static TextSums scoreText(ComponentTrial t, DivergenceEngine engine, Trial changes, PromptSet prompts) {
        TextSet text;
        try {
            text = engine.prepareText(t.getText(), t.getTextWindow());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("the text of trial " + t.getTrialId() + " (" + t.getText().size()
                    + " lines, window " + t.getTextWindow() + "): " + e.getMessage(), e);
        }
        try (text) {
            TextScore score = engine.scoreText(text, changes, prompts);
            return new TextSums(score.predicted(), score.nllSum(), score.klSum(), score.agreed());
        }
    }

    private static List<ScheduleEntry> entries(Trial trial) {
        List<ScheduleEntry> entries = new ArrayList<>();
        trial.changes().forEach((component, compression) -> entries.add(new ScheduleEntry(component,
                compression.toString())));
        return entries;
    }

    private static String describe(ComponentTrial t) {
        return switch (t.getKind()) {
            case CANDIDATE -> t.getComponent() + " " + t.getCompression();
            case SCHEDULE -> "schedule of " + t.getSchedule().size() + " entries";
            case BASELINE -> t.getComponent() + " baseline";
        };
    }

    private static List<List<Integer>> lists(int[][] rows) {
        return Arrays.stream(rows).map(r -> Arrays.stream(r).boxed().toList()).toList();
    }

    private static <T> ProducerRecord<String, byte[]> encode(Topic<String, T> topic, String key, T value,
                                                             Serializer<T> serializer) {
        return new ProducerRecord<>(topic.name(), key, serializer.serialize(topic.name(), value));
    }

    /** Runs each worker on a daemon thread of its own ({@code worker-0}, ...) and returns the threads. */
    public static List<Thread> startThreads(List<TrialWorker> workers) {
        List<Thread> threads = new ArrayList<>();
        for (TrialWorker w : workers) {
            Thread t = new Thread(w, "worker-" + threads.size());
            t.setDaemon(true);
            t.start();
            threads.add(t);
        }
        return threads;
    }

    /** Stops after the trial in progress; its transaction either commits or is redelivered. */
    @Override
    public void close() {
        running.set(false);
        consumer.wakeup();
    }
}
