package io.dtm.aggregator;

import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.SchemaRegistryCore;
import io.dtm.schemas.serde.AvroSerdes;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.stream.IntStream;

/**
 * The aggregator topology on a {@link TopologyTestDriver} with an in-memory schema registry, plus a fake worker that
 * turns planned trial shards into results with chosen FDT values.
 */
final class AggregatorDriver implements AutoCloseable {
    static final int TOKENS = 8;
    static final Duration UNKNOWN_SWEEP_GRACE = Duration.ofSeconds(30);

    final SchemaRegistryCore registry = new SchemaRegistryCore();
    final TopologyTestDriver driver;
    final TestInputTopic<String, SweepRequest> sweeps;
    final TestInputTopic<String, DivergenceResult> results;
    final TestInputTopic<String, byte[]> rawResults;
    final TestInputTopic<String, DeadLetter> deadLetterInput;
    final TestInputTopic<String, byte[]> rawDeadLetterInput;
    final TestOutputTopic<String, RankingUpdate> rankings;
    final TestOutputTopic<String, ScheduleStep> steps;
    final TestOutputTopic<String, ComponentTrial> trials;
    final TestOutputTopic<String, DeadLetter> deadLetters;

    AggregatorDriver() {
        try {
            // Under target/, not the OS temp directory, which Streams warns may be cleaned under it.
            Path stateDir = Files.createTempDirectory(Files.createDirectories(Path.of("target", "streams-state")), "test");
            Properties props = new Properties();
            props.put(StreamsConfig.APPLICATION_ID_CONFIG, "dtm-aggregator-test");
            props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
            props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
            props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
            props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
            props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
            driver = new TopologyTestDriver(AggregatorTopology.buildTopology(registry, UNKNOWN_SWEEP_GRACE), props,
                    Instant.parse("2026-11-22T12:00:00Z"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        StringSerializer keys = new StringSerializer();
        StringDeserializer keyReader = new StringDeserializer();
        sweeps = driver.createInputTopic(Topics.SWEEPS.name(), keys, AvroSerdes.serializer(SweepRequest.class, registry));
        results = driver.createInputTopic(Topics.DIVERGENCES.name(), keys, AvroSerdes.serializer(DivergenceResult.class, registry));
        rawResults = driver.createInputTopic(Topics.DIVERGENCES.name(), keys, new ByteArraySerializer());
        deadLetterInput = driver.createInputTopic(Topics.DEAD_LETTERS.name(), keys, AvroSerdes.serializer(DeadLetter.class, registry));
        rawDeadLetterInput = driver.createInputTopic(Topics.DEAD_LETTERS.name(), keys, new ByteArraySerializer());
        rankings = driver.createOutputTopic(Topics.RANKINGS.name(), keyReader, AvroSerdes.deserializer(RankingUpdate.class, registry));
        steps = driver.createOutputTopic(Topics.SCHEDULE.name(), keyReader, AvroSerdes.deserializer(ScheduleStep.class, registry));
        trials = driver.createOutputTopic(Topics.TRIALS.name(), keyReader, AvroSerdes.deserializer(ComponentTrial.class, registry));
        deadLetters = driver.createOutputTopic(Topics.DEAD_LETTERS.name(), keyReader,
                AvroSerdes.deserializer(DeadLetter.class, registry));
    }

    /**
     * Sweep "s1": components a (100 parameters) and b (300), 4 prompts in shards of 2, prune steps of 0.5, no int8,
     * 2 rounds, commit the best one, 8 tokens.
     */
    static SweepRequest.Builder sweep() {
        List<String> prompts = List.of("p0", "p1", "p2", "p3");
        return SweepRequest.newBuilder()
                .setSweepId("s1")
                .setModel("tiny")
                .setPromptSetId(TrialPlanner.promptSetId("tiny", TOKENS, prompts))
                .setPrompts(new ArrayList<>(prompts))
                .setTokens(TOKENS)
                .setComponents(new ArrayList<>(List.of(new ComponentInfo("a", 100L, 10), new ComponentInfo("b", 300L, 10))))
                .setPruneStep(0.5)
                .setInt8(false)
                .setRounds(2)
                .setCommitRule("1")
                .setShardSize(2);
    }

    void start(SweepRequest sweep) {
        sweeps.pipeInput(sweep.getSweepId(), sweep);
    }

    /** What a worker reports for {@code shard}: the given FDT per prompt, and SDT = (N - FDT) / N. */
    static DivergenceResult result(ComponentTrial shard, int... fdt) {
        return DivergenceResult.newBuilder()
                .setTrialId(shard.getTrialId())
                .setShard(shard.getShard())
                .setShardCount(shard.getShardCount())
                .setSweepId(shard.getSweepId())
                .setRound(shard.getRound())
                .setKind(shard.getKind())
                .setComponent(shard.getComponent())
                .setCompression(shard.getCompression())
                .setTrialsInRound(shard.getTrialsInRound())
                .setTokens(shard.getTokens())
                .setPromptOffset(shard.getPromptOffset())
                .setFdt(Arrays.stream(fdt).boxed().toList())
                .setSdt(Arrays.stream(fdt).mapToObj(f -> (double) (shard.getTokens() - f) / shard.getTokens()).toList())
                .setWorkerId("test-worker")
                .build();
    }

    void report(ComponentTrial shard, int... fdt) {
        results.pipeInput(Topics.shardKey(shard.getTrialId(), shard.getShard()), result(shard, fdt));
    }

    /** Reports every shard of a trial with the same FDT for every prompt. */
    void reportTrial(List<ComponentTrial> shards, int fdt) {
        for (ComponentTrial shard : shards) {
            report(shard, IntStream.range(0, shard.getPrompts().size()).map(i -> fdt).toArray());
        }
    }

    /** The dead letter a worker writes for a trial shard it could not score. */
    DeadLetter workerLetter(ComponentTrial trial, String reason) {
        byte[] payload = AvroSerdes.serializer(ComponentTrial.class, registry).serialize(Topics.TRIALS.name(), trial);
        return DeadLetter.newBuilder().setSourceTopic(Topics.TRIALS.name()).setPartition(0).setOffset(42)
                .setKey(Topics.shardKey(trial.getTrialId(), trial.getShard())).setPayload(ByteBuffer.wrap(payload))
                .setReason(reason).setService("gpu-worker").setFailedAtMs(1).build();
    }

    @Override
    public void close() {
        driver.close();
    }
}
