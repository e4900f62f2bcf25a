package io.dtm.aggregator;

import io.dtm.aggregator.avro.RoundState;
import io.dtm.aggregator.avro.SweepEvent;
import io.dtm.aggregator.avro.SweepEventKind;
import io.dtm.schemas.Topic;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.BranchedKStream;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.state.Stores;

import java.time.Duration;

/**
 * The aggregator's topology. Two stages:
 * <ol>
 *   <li>{@code sweeps} and {@code divergences} are read as raw bytes and re-keyed by sweep id into one repartition
 *   topic ({@link #EVENTS_BY_SWEEP}); values that do not decode go to {@link Topics#DEAD_LETTERS}. The workers' dead
 *   letters of trial shards are read back from there and re-keyed by their sweep too ({@link FailedTrialKeyProcessor}),
 *   so a sweep one of whose trials cannot be scored fails with the reason instead of stalling. Divergences are
 *   keyed by trial shard on their topic, and one topic for both kinds keeps a sweep's definition and its results in one
 *   partition, in order, without relying on two topics being co-partitioned.</li>
 *   <li>{@link SweepProcessor} keeps all state of a sweep in the stores below and writes {@link Topics#RANKINGS},
 *   {@link Topics#SCHEDULE}, {@link Topics#TRIALS} (later rounds and schedule measures) and dead letters.</li>
 * </ol>
 * Every store of the second stage is partitioned by sweep id, whatever its own key, so a sweep's queries are answered
 * by one instance: look its owner up with the sweep id ({@code queryMetadataForKey(store, sweepId, StringSerializer)}).
 */
public final class AggregatorTopology {
    private AggregatorTopology() {}

    /** Name of the repartition step; its topic is {@code <application.id>-events-by-sweep-repartition}. */
    public static final String EVENTS_BY_SWEEP = "events-by-sweep";
    /** sweepId → SweepRequest. */
    public static final String SWEEP_STORE = "sweeps";
    /** trialId/shard → DivergenceResult: a redelivered shard overwrites its earlier copy. */
    public static final String SHARD_STORE = "trial-shards";
    /** sweepId/round → RoundState (planned candidates, decided flag, measure trial). */
    public static final String ROUND_STORE = "rounds";
    /** sweepId/round → the latest RankingUpdate published for the round. */
    public static final String RANKING_STORE = "rankings";
    /** sweepId/round → the ScheduleStep of a decided round whose schedule is being measured. */
    public static final String PENDING_STEP_STORE = "pending-steps";
    /** sweepId/round → the published ScheduleStep. */
    public static final String STEP_STORE = "schedule-steps";
    /**
     * sweepId/trialId/shard (+ "/failed" for a dead-lettered trial) → a result or a failed trial that arrived before
     * its sweep, timestamped when it was parked.
     */
    public static final String PARKED_STORE = "parked-results";

    /** How long a result may wait for its sweep's definition by default (see {@link SweepProcessor}). */
    public static final Duration DEFAULT_UNKNOWN_SWEEP_GRACE = Duration.ofMinutes(5);

    /**
     * @param registry          the schema registry every serde registers and looks schemas up in
     * @param unknownSweepGrace how long a result naming a sweep not seen yet waits for it before it is dead-lettered
     */
    public static Topology buildTopology(SchemaRegistryClient registry, Duration unknownSweepGrace) {
        if (unknownSweepGrace.isNegative()) {
            throw new IllegalArgumentException("unknownSweepGrace must not be negative, got " + unknownSweepGrace);
        }
        Serde<String> keys = Serdes.String();
        Serde<byte[]> raw = Serdes.ByteArray();
        Serde<SweepRequest> sweepSerde = Topics.SWEEPS.valueSerde(registry);
        Serde<DivergenceResult> resultSerde = Topics.DIVERGENCES.valueSerde(registry);
        Serde<DeadLetter> deadLetterSerde = Topics.DEAD_LETTERS.valueSerde(registry);
        Serde<ComponentTrial> trialSerde = Topics.TRIALS.valueSerde(registry);
        Serde<RankingUpdate> rankingSerde = Topics.RANKINGS.valueSerde(registry);
        Serde<ScheduleStep> stepSerde = Topics.SCHEDULE.valueSerde(registry);
        Serde<SweepEvent> eventSerde = AvroSerdes.serde(SweepEvent.class, registry);

        StreamsBuilder builder = new StreamsBuilder();
        builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(SWEEP_STORE), keys, sweepSerde));
        builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(SHARD_STORE), keys, resultSerde));
        builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(ROUND_STORE), keys,
                AvroSerdes.serde(RoundState.class, registry)));
        builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(RANKING_STORE), keys,
                rankingSerde));
        builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(PENDING_STEP_STORE), keys,
                stepSerde));
        builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(STEP_STORE), keys, stepSerde));
        builder.addStateStore(Stores.timestampedKeyValueStoreBuilder(
                Stores.persistentTimestampedKeyValueStore(PARKED_STORE), keys, eventSerde));

        KStream<String, SpecificRecord> sweeps = builder
                .stream(Topics.SWEEPS.name(), Consumed.with(Topics.SWEEPS.keySerde(), raw).withName("sweeps-source"))
                .process(() -> new SweepKeyProcessor<>(SweepEventKind.SWEEP, sweepSerde.deserializer(),
                        SweepRequest::getSweepId), Named.as("key-sweeps-by-sweep"));
        KStream<String, SpecificRecord> results = builder
                .stream(Topics.DIVERGENCES.name(), Consumed.with(Topics.DIVERGENCES.keySerde(), raw)
                        .withName("divergences-source"))
                .process(() -> new SweepKeyProcessor<>(SweepEventKind.DIVERGENCE, resultSerde.deserializer(),
                        DivergenceResult::getSweepId), Named.as("key-divergences-by-sweep"));
        KStream<String, SpecificRecord> failedTrials = builder
                .stream(Topics.DEAD_LETTERS.name(), Consumed.with(Topics.DEAD_LETTERS.keySerde(), raw)
                        .withName("dead-letters-source"))
                .process(() -> new FailedTrialKeyProcessor(deadLetterSerde.deserializer(), trialSerde.deserializer()),
                        Named.as("key-failed-trials-by-sweep"));

        KStream<String, SweepEvent> events = route(sweeps.merge(results, Named.as("sweep-events"))
                        .merge(failedTrials, Named.as("sweep-events-and-failures")), "keyed-", deadLetterSerde)
                .defaultBranch(Branched.as("events"))
                .get("keyed-events")
                .mapValues(v -> (SweepEvent) v, Named.as("as-sweep-event"))
                .repartition(Repartitioned.<String, SweepEvent>as(EVENTS_BY_SWEEP)
                        .withKeySerde(keys)
                        .withValueSerde(eventSerde));

        KStream<String, SpecificRecord> outputs = events.process(
                () -> new SweepProcessor(sweepSerde.deserializer(), resultSerde.deserializer(),
                        deadLetterSerde.deserializer(), trialSerde.deserializer(), unknownSweepGrace),
                Named.as("sweep-state"),
                SWEEP_STORE, SHARD_STORE, ROUND_STORE, RANKING_STORE, PENDING_STEP_STORE, STEP_STORE, PARKED_STORE);
        BranchedKStream<String, SpecificRecord> routed = route(outputs, "out-", deadLetterSerde);
        to(routed, "out-", RankingUpdate.class, Topics.RANKINGS, rankingSerde, "rankings");
        to(routed, "out-", ScheduleStep.class, Topics.SCHEDULE, stepSerde, "schedule");
        to(routed, "out-", ComponentTrial.class, Topics.TRIALS, trialSerde, "trials");
        routed.noDefaultBranch();
        return builder.build();
    }

    /** Splits a stage's output by record type; dead letters are routed here for both stages. */
    private static BranchedKStream<String, SpecificRecord> route(KStream<String, SpecificRecord> stream, String prefix,
                                                                  Serde<DeadLetter> deadLetterSerde) {
        BranchedKStream<String, SpecificRecord> branches = stream.split(Named.as(prefix));
        to(branches, prefix, DeadLetter.class, Topics.DEAD_LETTERS, deadLetterSerde, "dead-letters");
        return branches;
    }

    private static <T extends SpecificRecord> void to(BranchedKStream<String, SpecificRecord> branches, String prefix,
                                                      Class<T> type, Topic<String, T> topic, Serde<T> serde,
                                                      String name) {
        branches.branch((key, value) -> type.isInstance(value), Branched.<String, SpecificRecord>withConsumer(
                branch -> branch.mapValues(type::cast, Named.as(prefix + name + "-cast"))
                        .to(topic.name(), Produced.with(topic.keySerde(), serde).withName(prefix + name + "-sink")),
                name));
    }
}
