package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.fail;

import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.EngineOptions;
import io.dtm.engine.LlamaConfig;
import io.dtm.engine.PromptSet;
import io.dtm.engine.TextSet;
import io.dtm.engine.Trial;
import io.dtm.engine.TrialScore;
import io.dtm.local.EmbeddedCluster;
import io.dtm.planner.Allocations;
import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.TextScore;
import io.dtm.schemas.avro.AllocationRequest;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingEntry;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TextSums;
import io.dtm.schemas.avro.TrialKind;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import io.dtm.worker.TrialWorker;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;

/**
 * What the end-to-end tests share: the tiny model and held-out prompts from {@code shared/}, the sweep they run, bounded
 * waits, reading and writing the pipeline's topics on the real broker, and the engine run directly as the reference.
 */
final class E2e {

    static {
        // Before the first logger exists: a broker at INFO drowns the test output (the worker's INFO lines stay).
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    }

    /** Generated tokens per prompt: small, so every trial is fast on two cores. */
    static final int TOKENS = 16;
    /** Six candidates: q_proj, v_proj and down_proj of both layers of the tiny model. */
    static final String COMPONENTS = "model\\.layers\\.[01]\\.(self_attn\\.(q|v)_proj|mlp\\.down_proj)";
    static final int PROMPTS = 10;
    /** Ten prompts in shards of five: every trial has two shards. */
    static final int SHARD_SIZE = 5;
    static final Duration TIMEOUT = Duration.ofSeconds(90);

    private E2e() {}

    static Path shared() {
        List<Path> candidates = new ArrayList<>();
        String property = System.getProperty("dtm.shared");
        if (property != null && !property.isBlank()) {
            candidates.add(Path.of(property));
        }
        Path cwd = Path.of(System.getProperty("user.dir"));
        candidates.add(cwd.resolve("../../shared"));
        candidates.add(cwd.resolve("../shared"));
        for (Path p : candidates) {
            if (Files.isDirectory(p.resolve("models/tiny-random-llama"))) {
                return p.toAbsolutePath().normalize();
            }
        }
        throw new IllegalStateException("shared directory with models/tiny-random-llama not found; tried " + candidates);
    }

    static Path tinyModel() {
        return shared().resolve("models/tiny-random-llama");
    }

    /**
     * The first {@code count} held-out paragraphs, each cut to its first 6, 8, 10, ... words (cycling), so that the
     * prompts of a batch have different token lengths and padding is exercised.
     */
    static List<String> prompts(int count) {
        List<String> lines = paragraphs(count);
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            String[] words = lines.get(i).split("\\s+");
            int n = Math.min(words.length, 6 + 2 * (i % 4));
            prompts.add(String.join(" ", Arrays.copyOf(words, n)));
        }
        return prompts;
    }

    /** The first {@code count} held-out paragraphs. */
    static List<String> paragraphs(int count) {
        try {
            return Files.readAllLines(shared().resolve("data/heldout-paragraphs.txt"), StandardCharsets.UTF_8).stream()
                    .map(String::strip).filter(l -> !l.isEmpty()).limit(count).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The tests' sweep: 6 components, prune step 0.5, 2 rounds, commit 1, 10 prompts in 2 shards, 16 tokens. */
    static SweepRequest sweep(String sweepId) {
        return sweep(sweepId, prompts(PROMPTS), 2);
    }

    static SweepRequest sweep(String sweepId, List<String> prompts, int rounds) {
        Path dir = tinyModel();
        try {
            List<ComponentInfo> selected = SweepOptions.components(LlamaConfig.read(dir), COMPONENTS);
            return SweepRequest.newBuilder()
                    .setSweepId(sweepId).setModel(dir.toString())
                    .setPromptSetId(TrialPlanner.promptSetId(dir.toString(), TOKENS, prompts))
                    .setPrompts(prompts).setTokens(TOKENS).setComponentRegex(COMPONENTS).setComponents(selected)
                    .setPruneStep(0.5).setInt8(false).setRounds(rounds).setCommitRule("1").setFdtmFloor(0.0)
                    .setTargetSparsity(1.0).setShardSize(SHARD_SIZE).setCreatedAtMs(1_700_000_000_000L)
                    .build();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The tests' target allocation: the sweep's 6 components to overall sparsity 0.5 in {@code iterations}, by FDTM,
     * with the first 4 held-out paragraphs as the text in windows of 32 tokens.
     */
    static SweepRequest targetSweep(String sweepId, int iterations) {
        return SweepRequest.newBuilder(sweep(sweepId, prompts(PROMPTS), 1)).setTargetSparsity(0.5)
                .setAllocation(new AllocationRequest(iterations, "fdtm", new ArrayList<>(paragraphs(4)), 32)).build();
    }

    /** The same definition under another id (createdAtMs included), for an uninterrupted reference run. */
    static SweepRequest renamed(SweepRequest sweep, String sweepId) {
        return SweepRequest.newBuilder(sweep).setSweepId(sweepId).build();
    }

    static EngineOptions cpu() {
        return new EngineOptions("cpu", "float32", 64, EngineOptions.DEFAULT_CACHE_BUDGET);
    }

    static SchemaRegistryClient registry(EmbeddedCluster cluster) {
        return io.dtm.schemas.registry.SchemaRegistryClients.connect(cluster.registryUrl());
    }

    static Map<String, Object> clientProps(EmbeddedCluster cluster) {
        return Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers());
    }

    // ---------------------------------------------------------------------------------------------------------------
    // waiting

    /**
     * Polls {@code condition} every 50 ms until it holds or {@code timeout} passes; an exception counts as "not yet"
     * (stores are not queryable while Streams restores or rebalances) and is reported if the wait fails.
     */
    static void await(String what, Duration timeout, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        RuntimeException last = null;
        while (true) {
            try {
                if (condition.getAsBoolean()) {
                    return;
                }
            } catch (RuntimeException e) {
                last = e;
            }
            if (System.nanoTime() > deadline) {
                AssertionErrorWithCause.fail("timed out after " + timeout.toSeconds() + " s waiting until " + what, last);
            }
            sleep(50);
        }
    }

    /** The first present value {@code query} returns within {@code timeout}. */
    static <T> T awaitValue(String what, Duration timeout, Supplier<Optional<T>> query) {
        AtomicReference<T> found = new AtomicReference<>();
        await(what, timeout, () -> {
            Optional<T> value = query.get();
            value.ifPresent(found::set);
            return value.isPresent();
        });
        return found.get();
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** An assertion failure that keeps the last exception seen while waiting. */
    static final class AssertionErrorWithCause {
        private AssertionErrorWithCause() {}

        static void fail(String message, Throwable cause) {
            if (cause == null) {
                org.junit.jupiter.api.Assertions.fail(message);
            }
            org.junit.jupiter.api.Assertions.fail(message + " (last error: " + cause + ")", cause);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // services

    static AggregatorApp startAggregator(EmbeddedCluster cluster, SchemaRegistryClient registry, String applicationId,
                                         Path stateDir) throws IOException {
        return startAggregator(AggregatorApp.Config.builder(cluster.bootstrapServers(), registry)
                .applicationId(applicationId).stateDir(stateDir).commitIntervalMs(100)
                .httpBindHost("127.0.0.1").httpAdvertisedHost("127.0.0.1").httpPort(0).build());
    }

    static AggregatorApp startAggregator(AggregatorApp.Config config) throws IOException {
        AggregatorApp app = AggregatorApp.start(config);
        try {
            await("the aggregator runs", TIMEOUT, () -> app.state() == KafkaStreams.State.RUNNING);
        } catch (AssertionError e) {
            app.close();
            throw e;
        }
        return app;
    }

    /** A worker of {@code group} on a daemon thread. */
    static final class RunningWorker implements AutoCloseable {
        final TrialWorker worker;
        final Thread thread;
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        RunningWorker(EmbeddedCluster cluster, SchemaRegistryClient registry, String group, String workerId) {
            this(new TrialWorker.Config(clientProps(cluster), registry, group, workerId, null, cpu(),
                    Duration.ofMinutes(10), 4));
        }

        RunningWorker(TrialWorker.Config config) {
            String workerId = config.workerId();
            this.worker = new TrialWorker(config);
            this.thread = new Thread(() -> {
                try {
                    worker.run();
                } catch (Throwable t) {
                    failure.set(t);
                }
            }, "test-worker-" + workerId);
            thread.setDaemon(true);
            thread.start();
        }

        boolean alive() {
            return thread.isAlive();
        }

        @Override
        public void close() {
            worker.close();
            try {
                thread.join(30_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temp dir left behind is harmless
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // the query API

    static ScheduleView awaitFinished(AggregatorApp app, String sweepId, Duration timeout) {
        return awaitValue("sweep " + sweepId + " finishes", timeout,
                () -> app.queries().schedule(sweepId).filter(ScheduleView::finished));
    }

    static RankingView ranking(AggregatorApp app, String sweepId, int round) {
        return awaitValue("the ranking of " + sweepId + " round " + round, TIMEOUT,
                () -> app.queries().ranking(sweepId, OptionalInt.of(round)));
    }

    static RankingView view(RankingUpdate u) {
        return new RankingView(u.getSweepId(), u.getRound(), u.getTrialsTotal(), u.getTrialsDone(), u.getDecided(),
                u.getUpdatedAtMs(), u.getEntries().stream().map(E2e::view).toList());
    }

    static RankingView.Entry view(RankingEntry e) {
        return new RankingView.Entry(e.getComponent(), e.getCompression(), e.getSparsity(), e.getBitsPerWeight(),
                e.getFdtm(), e.getSdtm(), e.getFdtMedian(), e.getFdtP10(), e.getShareAtN(), e.getPrompts(), e.getComplete());
    }

    static ScheduleView.Step view(ScheduleStep s) {
        return ScheduleView.Step.of(s);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // topics

    /** Every record of {@code topic} as committed (read_committed), in partition/offset order. */
    static List<ConsumerRecord<String, byte[]>> readAll(String bootstrap, String topic) {
        return readAll(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap), topic);
    }

    /** Every committed record of {@code topic}, read with these client settings (a secured cluster's). */
    static List<ConsumerRecord<String, byte[]>> readAll(Map<String, Object> clientProps, String topic) {
        Map<String, Object> props = new HashMap<>(clientProps);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(props, new StringDeserializer(),
                new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = c.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                    .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
            c.assign(partitions);
            c.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = c.endOffsets(partitions);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (partitions.stream().anyMatch(p -> c.position(p) < end.get(p))) {
                if (System.nanoTime() > deadline) {
                    fail("could not read " + topic + " to its end offsets " + end);
                }
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        out.sort(Comparator.comparingInt((ConsumerRecord<String, byte[]> r) -> r.partition())
                .thenComparingLong(ConsumerRecord::offset));
        return out;
    }

    /** Key and decoded value of every committed record of {@code topic}. */
    static <T> List<Map.Entry<String, T>> readAll(String bootstrap, String topic, Deserializer<T> deserializer) {
        return readAll(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap), topic, deserializer);
    }

    /** Key and decoded value of every committed record of {@code topic}, read with these client settings. */
    static <T> List<Map.Entry<String, T>> readAll(Map<String, Object> clientProps, String topic,
                                                  Deserializer<T> deserializer) {
        return readAll(clientProps, topic).stream()
                .map(r -> Map.entry(r.key(), deserializer.deserialize(r.topic(), r.value())))
                .toList();
    }

    /** The latest value per key (what a compacted topic converges to), in key order. */
    static <T> Map<String, T> latestByKey(List<Map.Entry<String, T>> records) {
        Map<String, T> latest = new java.util.TreeMap<>();
        for (Map.Entry<String, T> e : records) {
            latest.put(e.getKey(), e.getValue());
        }
        return latest;
    }

    static RecordMetadata produceRaw(String bootstrap, String topic, String key, byte[] value) {
        return produceRaw(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap), topic, key, value);
    }

    /** Produces one record with these client settings (a secured cluster's). */
    static RecordMetadata produceRaw(Map<String, Object> clientProps, String topic, String key, byte[] value) {
        Map<String, Object> props = new HashMap<>(clientProps);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(props, new StringSerializer(),
                new ByteArraySerializer())) {
            return p.send(new ProducerRecord<>(topic, key, value)).get();
        } catch (Exception e) {
            throw new IllegalStateException("cannot produce to " + topic, e);
        }
    }

    static byte[] encode(SchemaRegistryClient registry, String topic, ComponentTrial trial) {
        return AvroSerdes.serializer(ComponentTrial.class, registry).serialize(topic, trial);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // the engine run directly

    /** The divergence engine on the tiny model with the whole prompt set prepared at once: the reference numbers. */
    static final class Reference implements AutoCloseable {
        final DivergenceEngine engine;
        final PromptSet set;
        final List<String> prompts;

        Reference(List<String> prompts) throws IOException {
            this.prompts = List.copyOf(prompts);
            this.engine = DivergenceEngine.load(tinyModel(), cpu());
            this.set = engine.prepare(prompts, TOKENS, DivergenceEngine.Progress.NONE);
        }

        /** The summary of {@code schedule} plus (when not null) the candidate {@code component -> compression}. */
        DivergenceSummary score(List<ScheduleView.Entry> schedule, String component, String compression) {
            Trial trial = of(schedule);
            if (component != null) {
                trial = trial.plus(component, CompressionSpec.parse(compression));
            }
            return engine.score(set, trial).summary();
        }

        DivergenceSummary candidate(String component, String compression) {
            return score(List.of(), component, compression);
        }

        /**
         * The result a worker writes for {@code shard}: the engine's per-prompt numbers for the shard's prompts, sliced
         * from the whole prompt set, and the text metrics and baseline schedule where the trial asks for them.
         */
        DivergenceResult result(ComponentTrial shard, String workerId) {
            Trial trial = trial(shard);
            TrialScore score = engine.score(set, trial);
            int from = shard.getPromptOffset();
            int to = from + shard.getPrompts().size();
            return DivergenceResult.newBuilder()
                    .setTrialId(shard.getTrialId()).setShard(shard.getShard()).setShardCount(shard.getShardCount())
                    .setSweepId(shard.getSweepId()).setRound(shard.getRound()).setKind(shard.getKind())
                    .setComponent(shard.getComponent()).setCompression(shard.getCompression())
                    .setTrialsInRound(shard.getTrialsInRound()).setTokens(shard.getTokens())
                    .setPromptOffset(shard.getPromptOffset())
                    .setFdt(Arrays.stream(score.fdt(), from, to).boxed().toList())
                    .setSdt(Arrays.stream(score.sdt(), from, to).boxed().toList())
                    .setWorkerId(workerId).setElapsedMs(1)
                    .setText(shard.getText().isEmpty() ? null : text(trial, shard.getText(), shard.getTextWindow()))
                    .setSchedule(shard.getKind() == TrialKind.BASELINE ? scheduleOf(trial) : List.of())
                    .build();
        }

        /**
         * The model a trial scores: its schedule plus a candidate's action; the global baseline is the engine's one
         * magnitude threshold over the schedule's components (in the model's order) at the schedule's sparsity, which
         * the tests' baselines name uniformly.
         */
        Trial trial(ComponentTrial t) {
            Trial trial = of(ScheduleView.Entry.of(t.getSchedule()));
            if (t.getKind() == TrialKind.CANDIDATE) {
                return trial.plus(t.getComponent(), CompressionSpec.parse(t.getCompression()));
            }
            if (t.getKind() == TrialKind.BASELINE && t.getComponent().equals(Allocations.GLOBAL)) {
                double sparsity = CompressionSpec.parse(t.getSchedule().get(0).getCompression()).sparsity();
                return new Trial(engine.globalMagnitudeSchedule(sparsity, engine.config().componentNames().stream()
                        .filter(trial.changes()::containsKey).toList()));
            }
            return trial;
        }

        /** The text metrics of {@code trial} on {@code lines}, as one worker computes them. */
        TextSums text(Trial trial, List<String> lines, int window) {
            try (TextSet text = engine.prepareText(lines, window)) {
                TextScore score = engine.scoreText(text, trial, set);
                return new TextSums(score.predicted(), score.nllSum(), score.klSum(), score.agreed());
            }
        }

        static Trial of(List<ScheduleView.Entry> schedule) {
            Trial trial = Trial.none();
            for (ScheduleView.Entry e : schedule) {
                trial = trial.plus(e.component(), CompressionSpec.parse(e.compression()));
            }
            return trial;
        }

        static List<ScheduleEntry> scheduleOf(Trial trial) {
            List<ScheduleEntry> entries = new ArrayList<>();
            trial.changes().forEach((c, spec) -> entries.add(new ScheduleEntry(c, spec.toString())));
            return entries;
        }

        @Override
        public void close() {
            set.close();
            engine.close();
        }
    }
}
