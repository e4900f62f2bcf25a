package io.dtm.schemas;

import io.dtm.schemas.avro.BaseContinuation;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.ToIntFunction;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Every topic of the pipeline, its key and what it holds, and their creation on a cluster: the one catalog producers,
 * consumers, the aggregator's topology, {@code dtm topics create} and the embedded broker all use.
 *
 * <p>Keys are UTF-8 strings; values are Avro records in the Confluent wire format (subject {@code <topic>-value}).
 */
public final class Topics {
    private Topics() {}

    private static final Logger LOG = LoggerFactory.getLogger(Topics.class);

    /**
     * How long the non-compacted topics keep a record, in ms: 30 days. A trial left unconsumed for longer is deleted
     * and its round never ends, so this must exceed any pause of the worker pool.
     */
    public static final long RETENTION_MS = 30L * 24 * 60 * 60 * 1000;
    private static final Duration RETENTION = Duration.ofMillis(RETENTION_MS);

    /** Partitions of {@link #TRIALS}: the most workers that can be busy at once. */
    public static final int WORK_PARTITIONS = 32;
    /** Partitions of every other pipeline topic. */
    public static final int PARTITIONS = 8;
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    /** Key {@code sweepId}; the latest definition of each sweep. */
    public static final Topic<String, SweepRequest> SWEEPS =
            Topic.compacted("dtm.sweeps", SweepRequest.class, PARTITIONS);
    /** Key {@code trialId/shard}. The work queue the worker group consumes. */
    public static final Topic<String, ComponentTrial> TRIALS =
            Topic.retained("dtm.trials", ComponentTrial.class, WORK_PARTITIONS, RETENTION);
    /** Key {@code trialId/shard}. Per-prompt FDT/SDT of one trial shard. */
    public static final Topic<String, DivergenceResult> DIVERGENCES =
            Topic.retained("dtm.divergences", DivergenceResult.class, PARTITIONS, RETENTION);
    /** Key {@code promptSetId/shard}; base continuations shared by workers. */
    public static final Topic<String, BaseContinuation> BASELINES =
            Topic.compacted("dtm.baselines", BaseContinuation.class, PARTITIONS);
    /** Key {@code sweepId/round}; the live ranking dashboards consume. */
    public static final Topic<String, RankingUpdate> RANKINGS =
            Topic.compacted("dtm.rankings", RankingUpdate.class, PARTITIONS);
    /** Key {@code sweepId/round}; each decided round and the cumulative schedule. */
    public static final Topic<String, ScheduleStep> SCHEDULE =
            Topic.compacted("dtm.schedule", ScheduleStep.class, PARTITIONS);
    /** Key: the failed record's key. Records no stage could process, with the reason. */
    public static final Topic<String, DeadLetter> DEAD_LETTERS =
            Topic.retained("dtm.dead-letters", DeadLetter.class, PARTITIONS, RETENTION);
    /**
     * The single-machine schema registry's store, as Confluent's {@code _schemas}: key {@code subject/version}, value
     * the registration as JSON. One partition keeps the registrations in order.
     */
    public static final Topic<String, String> SCHEMAS = Topic.compactedText("_dtm_schemas", 1);

    /** Topics the pipeline creates, in creation order; the registry creates its own {@link #SCHEMAS}. */
    public static final List<Topic<String, ?>> ALL =
            List.of(SWEEPS, TRIALS, DIVERGENCES, BASELINES, RANKINGS, SCHEDULE, DEAD_LETTERS);

    public static String shardKey(String id, int shard) {
        return id + "/" + shard;
    }

    public static String roundKey(String sweepId, int round) {
        return sweepId + "/" + round;
    }

    /**
     * Creates every topic of {@link #ALL} that is missing on the cluster {@code adminProps} reach (bootstrap servers
     * plus security settings), compacted or not as the topic is: with the partitions {@code partitions} gives it and,
     * if it is not compacted, {@code retention} (negative: forever). Existing topics are left as they are. Returns the
     * topics it created.
     */
    public static List<String> create(Map<String, Object> adminProps, ToIntFunction<Topic<String, ?>> partitions,
                                      Duration retention, short replication) {
        Objects.requireNonNull(adminProps, "adminProps");
        if (replication < 1) {
            throw new IllegalArgumentException("replication must be >= 1, was " + replication);
        }
        List<NewTopic> topics = new ArrayList<>();
        for (Topic<String, ?> topic : ALL) {
            int count = partitions.applyAsInt(topic);
            if (count < 1) {
                throw new IllegalArgumentException(topic + ": partitions must be >= 1, was " + count);
            }
            topics.add(topic.newTopic(count, replication, retention));
        }
        List<String> created = new ArrayList<>();
        try (Admin admin = Admin.create(adminProps)) {
            CreateTopicsResult result = admin.createTopics(topics);
            for (NewTopic topic : topics) {
                try {
                    result.values().get(topic.name()).get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                    created.add(topic.name());
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw new IllegalStateException("cannot create topic " + topic.name() + ": " + e.getCause(),
                                e.getCause());
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating the pipeline topics", e);
        } catch (TimeoutException e) {
            throw new IllegalStateException("Kafka at " + adminProps.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG)
                    + " did not create the pipeline topics within " + TIMEOUT.toSeconds() + " s", e);
        }
        if (!created.isEmpty()) {
            LOG.info("created topics {} (replication factor {})", created, replication);
        }
        return created;
    }

    /** As {@link #create(Map, ToIntFunction, Duration, short)}, every topic with {@code partitions} partitions. */
    public static List<String> create(Map<String, Object> adminProps, int partitions, short replication) {
        return create(adminProps, topic -> partitions, RETENTION, replication);
    }

    /**
     * The pipeline's topics on the cluster whose cleanup policy is not theirs, each a line saying what is wrong: a
     * compacted topic that is not (Kafka auto-creates topics uncompacted) loses the state it holds, and a topic of
     * records compacted by mistake loses records that share a key.
     */
    public static List<String> misconfigured(Map<String, Object> adminProps) {
        List<ConfigResource> resources = ALL.stream()
                .map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t.name())).toList();
        List<String> problems = new ArrayList<>();
        try (Admin admin = Admin.create(adminProps)) {
            Map<ConfigResource, KafkaFuture<Config>> configs = admin.describeConfigs(resources).values();
            for (Topic<String, ?> topic : ALL) {
                Config config;
                try {
                    config = configs.get(new ConfigResource(ConfigResource.Type.TOPIC, topic.name()))
                            .get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                        continue;
                    }
                    throw new IllegalStateException("cannot read the configuration of topic " + topic + ": "
                            + e.getCause(), e.getCause());
                }
                String policy = config.get(TopicConfig.CLEANUP_POLICY_CONFIG).value();
                if (policy.contains(TopicConfig.CLEANUP_POLICY_COMPACT) != topic.compacted()) {
                    problems.add(topic + " has cleanup.policy=" + policy + " but must " + (topic.compacted()
                            ? "be compacted: kafka-configs.sh --alter --entity-type topics --entity-name " + topic
                            + " --add-config cleanup.policy=compact" : "not be compacted"));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while checking the pipeline topics", e);
        } catch (TimeoutException e) {
            throw new IllegalStateException("Kafka at " + adminProps.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG)
                    + " did not describe the pipeline topics within " + TIMEOUT.toSeconds() + " s", e);
        }
        return problems;
    }
}
