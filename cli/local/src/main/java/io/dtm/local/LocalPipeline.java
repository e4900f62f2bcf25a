package io.dtm.local;

import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.aggregator.SweepQueryService;
import io.dtm.engine.EngineOptions;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.Topic;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.registry.SchemaRegistryClients;
import io.dtm.worker.TrialWorker;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.Supplier;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Deserializer;

/**
 * The whole pipeline in this JVM, for the demo: the embedded cluster, one aggregator and a group of workers, plus the
 * few things the demo asks of it (publish a sweep, follow it to its end, read back what the workers spent).
 */
public final class LocalPipeline implements AutoCloseable {

    /** How often {@link #follow} asks the aggregator. */
    private static final Duration POLL = Duration.ofMillis(500);
    private static final long WORKER_STOP_MILLIS = 30_000;

    /** Called on every poll of {@link #follow} with what the aggregator's queries answered. */
    @FunctionalInterface
    public interface Progress {
        void update(Optional<RankingView> ranking, Optional<ScheduleView> schedule);
    }

    private final TempDir stateDir;
    private final EmbeddedCluster cluster;
    private final SchemaRegistryClient registry;
    private final Map<String, Object> clientProps;
    private final AggregatorApp aggregator;
    private final List<TrialWorker> workers;
    private final List<Thread> threads;
    private boolean workersStopped;

    private LocalPipeline(TempDir stateDir, EmbeddedCluster cluster, SchemaRegistryClient registry,
                          AggregatorApp aggregator, List<TrialWorker> workers) {
        this.stateDir = stateDir;
        this.cluster = cluster;
        this.registry = registry;
        this.clientProps = Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers());
        this.aggregator = aggregator;
        this.workers = workers;
        this.threads = TrialWorker.startThreads(workers);
    }

    /**
     * Starts the cluster, an aggregator (committing every 100 ms, its API on a free port of 127.0.0.1) and
     * {@code workers} workers in the default group, each on a thread of its own.
     *
     * @param modelRoot the directory the workers may load models from
     */
    public static LocalPipeline start(int workers, Path modelRoot, EngineOptions engine) throws IOException {
        if (workers < 1) {
            throw new IllegalArgumentException("the demo needs at least one worker, got " + workers);
        }
        TempDir stateDir = TempDir.create("dtm-demo-streams");
        EmbeddedCluster cluster = null;
        AggregatorApp aggregator = null;
        List<TrialWorker> group = new ArrayList<>();
        try {
            cluster = EmbeddedCluster.start(null);
            SchemaRegistryClient registry = SchemaRegistryClients.connect(cluster.registryUrl());
            aggregator = AggregatorApp.start(AggregatorApp.Config.builder(cluster.bootstrapServers(), registry)
                    .stateDir(stateDir.path()).commitIntervalMs(100).httpPort(0)
                    .httpBindHost("127.0.0.1").httpAdvertisedHost("127.0.0.1").build());
            Map<String, Object> clientProps = Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG,
                    cluster.bootstrapServers());
            for (int i = 0; i < workers; i++) {
                group.add(new TrialWorker(TrialWorker.Config.defaults(clientProps, registry, "demo-worker-" + i,
                        modelRoot, engine)));
            }
            return new LocalPipeline(stateDir, cluster, registry, aggregator, group);
        } catch (IOException | RuntimeException e) {
            if (aggregator != null) {
                aggregator.close();
            }
            if (cluster != null) {
                cluster.close();
            }
            stateDir.close();
            throw e;
        }
    }

    public String bootstrapServers() {
        return cluster.bootstrapServers();
    }

    public String registryUrl() {
        return cluster.registryUrl();
    }

    /** Where the aggregator answers queries about {@code sweepId}'s ranking. */
    public String rankingUrl(String sweepId) {
        return "http://" + aggregator.restAddress().host() + ":" + aggregator.restAddress().port() + "/sweeps/"
                + sweepId + "/ranking";
    }

    public SweepPublisher.Summary publish(SweepRequest sweep) {
        return new SweepPublisher(clientProps, registry).publish(sweep);
    }

    /** Asks the aggregator about the sweep until it has finished, reporting every answer to {@code progress}. */
    public ScheduleView follow(String sweepId, Duration timeout, Progress progress) throws InterruptedException {
        SweepQueryService queries = aggregator.queries();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            Optional<ScheduleView> schedule = whileRebalancing(() -> queries.schedule(sweepId));
            progress.update(whileRebalancing(() -> queries.ranking(sweepId, OptionalInt.empty())), schedule);
            if (schedule.isPresent() && schedule.get().finished()) {
                return schedule.get();
            }
            Thread.sleep(POLL.toMillis());
        }
        throw new IllegalStateException("the sweep did not finish within " + timeout.toMinutes() + " minutes");
    }

    /** Empty while Kafka Streams (re)balances: its stores cannot be queried then. */
    private static <T> Optional<T> whileRebalancing(Supplier<Optional<T>> query) {
        try {
            return query.get();
        } catch (RuntimeException e) {
            return Optional.empty();
        }
    }

    /** Each round's ranking up to {@code lastRound}, in round order. */
    public Map<Integer, RankingView> rankings(String sweepId, int lastRound) {
        Map<Integer, RankingView> rankings = new LinkedHashMap<>();
        for (int r = 0; r <= lastRound; r++) {
            aggregator.queries().ranking(sweepId, OptionalInt.of(r)).ifPresent(v -> rankings.put(v.round(), v));
        }
        return rankings;
    }

    /** Stops the workers after their trials in progress. */
    public void stopWorkers() throws InterruptedException {
        if (workersStopped) {
            return;
        }
        workersStopped = true;
        workers.forEach(TrialWorker::close);
        for (Thread t : threads) {
            t.join(WORKER_STOP_MILLIS);
        }
    }

    /** The workers' own scoring time for the sweep, summed over its trial shards, read back from the results topic. */
    public Duration workerTime(String sweepId) {
        Topic<String, DivergenceResult> results = Topics.DIVERGENCES;
        Deserializer<DivergenceResult> deserializer = results.valueSerde(registry).deserializer();
        Map<String, Object> props = new HashMap<>(clientProps);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        Map<String, Long> byShard = new HashMap<>();
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(props, results.keySerde().deserializer(),
                new ByteArrayDeserializer())) {
            results.assignFromBeginning(consumer, Duration.ofSeconds(60));
            // a redelivered shard overwrites its earlier result, as in the aggregator
            Topic.readToEnd(consumer, r -> {
                DivergenceResult d = deserializer.deserialize(r.topic(), r.value());
                if (d != null && d.getSweepId().equals(sweepId)) {
                    byShard.put(r.key(), d.getElapsedMs());
                }
            });
        }
        return Duration.ofMillis(byShard.values().stream().mapToLong(Long::longValue).sum());
    }

    @Override
    public void close() {
        if (!workersStopped) {
            workers.forEach(TrialWorker::close);
        }
        try {
            aggregator.close();
        } finally {
            try {
                cluster.close();
            } finally {
                stateDir.close();
            }
        }
    }
}
