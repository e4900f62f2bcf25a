package io.dtm.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.aggregator.SweepQueryService;
import io.dtm.engine.EngineOptions;
import io.dtm.local.EmbeddedCluster;
import io.dtm.local.EngineComparison;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.registry.SchemaRegistryClients;
import io.dtm.schemas.serde.AvroSerdes;
import io.dtm.worker.TrialWorker;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true, description = "Embedded broker + registry, one aggregator, two workers and a sweep, end to end.")
final class DemoCommand implements Callable<Integer> {

    @Mixin
    SweepOptions sweep;

    @Mixin
    EngineMixin engine;

    @Option(names = "--workers", defaultValue = "2", description = "Workers in the group (default: ${DEFAULT-VALUE}).")
    int workers;

    @Option(names = "--out", description = "Write the rankings and schedule here as JSON.")
    Path out;

    @Option(names = "--compare-engine",
            description = "Afterwards, score the same trials with the engine alone (no Kafka) and compare time and FDTM.")
    boolean compareEngine;

    @Option(names = "--timeout-minutes", defaultValue = "30", description = "Give up after this long (default: ${DEFAULT-VALUE}).")
    long timeoutMinutes;

    @Override
    public Integer call() throws Exception {
        // the live progress lines are the demo's output; per-trial and broker logs would drown them
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
        System.setProperty("org.slf4j.simpleLogger.log.io.dtm", "warn");
        // in-process workers share one PyTorch pool: more threads than cores only makes them contend
        int pool = Math.max(1, Runtime.getRuntime().availableProcessors() / Math.max(1, workers));
        System.setProperty("ai.djl.pytorch.num_threads", System.getProperty("ai.djl.pytorch.num_threads", String.valueOf(pool)));
        System.setProperty("ai.djl.pytorch.num_interop_threads",
                System.getProperty("ai.djl.pytorch.num_interop_threads", "1"));
        long start = System.nanoTime();
        SweepRequest request = sweep.request();
        System.out.printf("dtm demo: %s, %d components, %d prompts x %d tokens, %d round(s), commit %s, %d workers%n",
                sweep.modelDir().getFileName(), request.getComponents().size(), request.getPrompts().size(),
                request.getTokens(), request.getRounds(), request.getCommitRule(), workers);
        Path stateDir = Files.createTempDirectory("dtm-demo-streams");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null)) {
            System.out.println("broker " + cluster.bootstrapServers() + ", registry " + cluster.registryUrl());
            SchemaRegistryClient registry = SchemaRegistryClients.connect(cluster.registryUrl());
            Map<String, Object> clientProps = Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers());
            AggregatorApp.Config aggregatorConfig = AggregatorApp.Config.builder(cluster.bootstrapServers(), registry)
                    .stateDir(stateDir).commitIntervalMs(100).httpPort(0)
                    .httpBindHost("127.0.0.1").httpAdvertisedHost("127.0.0.1").build();
            try (AggregatorApp aggregator = AggregatorApp.start(aggregatorConfig)) {
                List<TrialWorker> group = new ArrayList<>();
                EngineOptions options = engine.options();
                for (int i = 0; i < workers; i++) {
                    group.add(new TrialWorker(new TrialWorker.Config(clientProps, registry, "dtm-workers",
                            "demo-worker-" + i, sweep.modelDir().toAbsolutePath().getParent(), options,
                            Duration.ofMinutes(60), 4)));
                }
                List<Thread> threads = WorkerCommand.startThreads(group);
                System.out.println("aggregator queries at http://" + aggregator.restAddress().host() + ":"
                        + aggregator.restAddress().port() + "/sweeps/" + request.getSweepId() + "/ranking");
                var published = SweepCommand.publish(clientProps, registry, request);
                System.out.printf("sweep %s: %d trials in %d shards for round 0%n", published.sweepId(),
                        published.trials(), published.shards());
                ScheduleView schedule = follow(aggregator.queries(), request, Duration.ofMinutes(timeoutMinutes));
                group.forEach(TrialWorker::close);
                for (Thread t : threads) {
                    t.join(30_000);
                }
                Map<Integer, RankingView> rankings = new LinkedHashMap<>();
                for (int r = 0; r <= schedule.currentRound(); r++) {
                    aggregator.queries().ranking(request.getSweepId(), OptionalInt.of(r)).ifPresent(v -> rankings.put(v.round(), v));
                }
                double wall = (System.nanoTime() - start) / 1e9;
                double scoring = workerSeconds(clientProps, registry, request.getSweepId());
                report(request, rankings, schedule);
                System.out.printf(Locale.ROOT, "demo wall time %.1f s; workers' own scoring time %.1f s (sum over trial shards)%n",
                        wall, scoring);
                if (compareEngine) {
                    EngineComparison.run(sweep.modelDir(), request, rankings, schedule, engine.options(), wall);
                }
                if (out != null) {
                    writeJson(out, request, rankings, schedule);
                    System.out.println("wrote " + out);
                }
            }
        } finally {
            deleteTree(stateDir);
        }
        return 0;
    }

    /** Prints progress whenever the ranking or schedule changes, until the sweep finishes. */
    private static ScheduleView follow(SweepQueryService queries, SweepRequest request, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        String last = "";
        while (System.nanoTime() < deadline) {
            Optional<ScheduleView> schedule = safely(() -> queries.schedule(request.getSweepId()));
            Optional<RankingView> ranking = safely(() -> queries.ranking(request.getSweepId(), OptionalInt.empty()));
            StringBuilder line = new StringBuilder();
            ranking.ifPresent(r -> {
                line.append(String.format(Locale.ROOT, "round %d: %d/%d trials", r.round(), r.trialsDone(), r.trialsTotal()));
                r.entries().stream().filter(RankingView.Entry::complete).limit(3).forEach(e -> line.append(String.format(
                        Locale.ROOT, " | %s %s FDTM %.1f", shortName(e.component()), e.compression(), e.fdtm())));
            });
            schedule.ifPresent(s -> line.append(String.format(Locale.ROOT, " | %d step(s) decided", s.steps().size())));
            if (!line.toString().equals(last) && line.length() > 0) {
                System.out.println(line);
                last = line.toString();
            }
            if (schedule.isPresent() && schedule.get().finished()) {
                return schedule.get();
            }
            Thread.sleep(500);
        }
        throw new IllegalStateException("the sweep did not finish within " + timeout.toMinutes() + " minutes");
    }

    private static <T> Optional<T> safely(java.util.function.Supplier<Optional<T>> query) {
        try {
            return query.get();
        } catch (RuntimeException e) {
            return Optional.empty(); // stores are not queryable while Streams (re)balances
        }
    }

    private static String shortName(String component) {
        return component.replace("model.layers.", "L").replace("self_attn.", "").replace("mlp.", "");
    }

    private static void report(SweepRequest request, Map<Integer, RankingView> rankings, ScheduleView schedule) {
        System.out.println();
        for (RankingView r : rankings.values()) {
            System.out.printf("round %d ranking (best first):%n", r.round());
            r.entries().stream().limit(10).forEach(e -> System.out.printf(Locale.ROOT,
                    "  %-36s %-13s FDTM %5.1f  SDTM %.4f  at N %3.0f%%%n",
                    e.component(), e.compression(), e.fdtm(), e.sdtm(), 100 * e.shareAtN()));
            if (r.entries().size() > 10) {
                System.out.printf("  ... %d more%n", r.entries().size() - 10);
            }
        }
        System.out.println("schedule:");
        for (ScheduleView.Step s : schedule.steps()) {
            System.out.printf(Locale.ROOT, "  round %d: commit %s -> schedule FDTM %.1f SDTM %.4f, overall sparsity %.2f%%%n",
                    s.round(), s.committed().stream().map(e -> e.component() + " -> " + e.compression()).toList(),
                    s.fdtm(), s.sdtm(), 100 * s.overallSparsity());
        }
        schedule.schedule().forEach(e -> System.out.printf("  %s -> %s%n", e.component(), e.compression()));
        if (!schedule.stopReason().isEmpty()) {
            System.out.println("  stopped: " + schedule.stopReason()
                    + (schedule.failure().isEmpty() ? "" : " (" + schedule.failure() + ")"));
        }
    }

    private static void writeJson(Path file, SweepRequest request, Map<Integer, RankingView> rankings, ScheduleView schedule)
            throws java.io.IOException {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("sweepId", request.getSweepId());
        root.put("model", request.getModel());
        root.put("tokens", request.getTokens());
        root.put("prompts", request.getPrompts().size());
        List<Map<String, Object>> rounds = new ArrayList<>();
        for (RankingView r : rankings.values()) {
            List<Map<String, Object>> ranking = new ArrayList<>();
            for (RankingView.Entry e : r.entries()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("component", e.component());
                m.put("compression", e.compression());
                m.put("fdtm", e.fdtm());
                m.put("sdtm", e.sdtm());
                m.put("fdt_median", e.fdtMedian());
                m.put("fdt_p10", e.fdtP10());
                m.put("share_at_n", e.shareAtN());
                ranking.add(m);
            }
            rounds.add(Map.of("round", r.round(), "ranking", ranking));
        }
        root.put("rounds", rounds);
        Map<String, Object> sched = new LinkedHashMap<>();
        Map<String, String> components = new LinkedHashMap<>();
        schedule.schedule().forEach(e -> components.put(e.component(), e.compression()));
        sched.put("components", components);
        sched.put("steps", schedule.steps());
        ScheduleView.Step lastStep = schedule.steps().isEmpty() ? null : schedule.steps().get(schedule.steps().size() - 1);
        sched.put("overall_sparsity", lastStep == null ? 0.0 : lastStep.overallSparsity());
        sched.put("fdtm", lastStep == null ? request.getTokens() : lastStep.fdtm());
        sched.put("stop_reason", schedule.stopReason());
        root.put("schedule", sched);
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), root);
    }

    /** Sum of the workers' own per-shard scoring times for the sweep, read back from the divergence topic. */
    private static double workerSeconds(Map<String, Object> clientProps, SchemaRegistryClient registry, String sweepId) {
        Map<String, Object> props = new HashMap<>(clientProps);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        var deserializer = AvroSerdes.serde(DivergenceResult.class, registry).deserializer();
        Map<String, Long> byKey = new HashMap<>();
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(props, new StringDeserializer(), new ByteArrayDeserializer())) {
            var partitions = c.partitionsFor(Topics.DIVERGENCES).stream()
                    .map(p -> new org.apache.kafka.common.TopicPartition(p.topic(), p.partition())).toList();
            c.assign(partitions);
            c.seekToBeginning(partitions);
            var end = c.endOffsets(partitions);
            while (partitions.stream().anyMatch(p -> c.position(p) < end.get(p))) {
                for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(200))) {
                    DivergenceResult d = deserializer.deserialize(r.topic(), r.value());
                    if (d != null && d.getSweepId().equals(sweepId)) {
                        byKey.put(r.key(), d.getElapsedMs());
                    }
                }
            }
        }
        return byKey.values().stream().mapToLong(Long::longValue).sum() / 1000.0;
    }

    private static void deleteTree(Path dir) {
        try (var paths = Files.walk(dir)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (java.io.IOException ignored) {
            // a temp dir left behind is harmless
        }
    }
}
