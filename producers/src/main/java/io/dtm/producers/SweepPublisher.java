package io.dtm.producers;

import io.dtm.planner.Rounds;
import io.dtm.planner.SweepRequests;
import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.SchemaRegistryClient;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * Starts a sweep: publishes its {@link SweepRequest} and its first trials ({@link Rounds#first}: round 0's, and a target
 * allocation's baselines) in one Kafka transaction, so workers and the aggregator see either the whole sweep or none
 * of it. Later rounds are the aggregator's.
 */
public final class SweepPublisher {
    private static final Logger log = LoggerFactory.getLogger(SweepPublisher.class);

    /**
     * What a publish wrote: {@code trials} distinct trials in {@code shards} trial records; {@code notPlanned} names
     * each component and kind the sweep will never try together, and why (a group that does not divide its width).
     */
    public record Summary(String sweepId, int trials, int shards, List<String> notPlanned) {
        public Summary {
            notPlanned = List.copyOf(notPlanned);
        }
    }

    private final Map<String, Object> clientProps;
    private final Serializer<SweepRequest> sweepSerializer;
    private final Serializer<ComponentTrial> trialSerializer;
    private final Function<Map<String, Object>, Producer<String, byte[]>> producers;

    /**
     * @param clientProps producer properties: {@code bootstrap.servers} plus any security settings (SASL, TLS);
     *                    serializers, idempotence and the transactional id are set here
     * @param registry    where the sweep's and the trials' schemas are registered
     */
    public SweepPublisher(Map<String, Object> clientProps, SchemaRegistryClient registry) {
        this(clientProps, registry, KafkaProducer::new);
    }

    SweepPublisher(Map<String, Object> clientProps, SchemaRegistryClient registry,
                   Function<Map<String, Object>, Producer<String, byte[]>> producers) {
        this.clientProps = Map.copyOf(clientProps);
        this.sweepSerializer = Topics.SWEEPS.valueSerde(registry).serializer();
        this.trialSerializer = Topics.TRIALS.valueSerde(registry).serializer();
        this.producers = Objects.requireNonNull(producers, "producers");
    }

    /**
     * One transactional id per sweep: publishing the same sweep again fences a stuck earlier attempt instead of
     * interleaving with it, and different sweeps never fence each other.
     */
    public static String transactionalId(String sweepId) {
        return "dtm-sweep-" + sweepId;
    }

    /** The producer settings used for a sweep: the client properties plus what the transaction needs. */
    public Map<String, Object> producerProps(String sweepId) {
        Map<String, Object> props = new HashMap<>(clientProps);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId(sweepId));
        return props;
    }

    /**
     * Validates the sweep, then publishes it with its round-0 trials atomically.
     *
     * @throws IllegalArgumentException naming every invalid field; nothing is published then
     * @throws org.apache.kafka.common.KafkaException when the transaction fails; it is aborted, nothing is visible
     */
    public Summary publish(SweepRequest sweep) {
        SweepRequests.validate(sweep);
        String sweepId = sweep.getSweepId();
        List<ComponentTrial> trials = Rounds.first(sweep);
        // Serialize before the transaction opens: a serializer failure then leaves nothing to abort.
        String sweeps = Topics.SWEEPS.name();
        String work = Topics.TRIALS.name();
        List<ProducerRecord<String, byte[]>> records = new ArrayList<>(trials.size() + 1);
        records.add(new ProducerRecord<>(sweeps, sweepId, sweepSerializer.serialize(sweeps, sweep)));
        for (ComponentTrial trial : trials) {
            records.add(new ProducerRecord<>(work, Topics.shardKey(trial.getTrialId(), trial.getShard()),
                    trialSerializer.serialize(work, trial)));
        }
        try (Producer<String, byte[]> producer = producers.apply(producerProps(sweepId))) {
            producer.initTransactions();
            producer.beginTransaction();
            try {
                records.forEach(producer::send);
                producer.commitTransaction();
            } catch (ProducerFencedException | OutOfOrderSequenceException | AuthorizationException e) {
                throw e; // the producer cannot abort after these; closing it is all that is left
            } catch (RuntimeException e) {
                abortQuietly(producer, e);
                throw e;
            }
        }
        Summary summary = new Summary(sweepId, trials.stream().map(ComponentTrial::getTrialId).distinct().toList().size(),
                trials.size(), TrialPlanner.notPlanned(sweep));
        log.info("published sweep {}: {} first trials in {} shards{}", sweepId, summary.trials(), summary.shards(),
                summary.notPlanned().isEmpty() ? "" : "; never planned: " + summary.notPlanned());
        return summary;
    }

    private static void abortQuietly(Producer<String, byte[]> producer, RuntimeException cause) {
        try {
            producer.abortTransaction();
        } catch (RuntimeException abortFailure) {
            cause.addSuppressed(abortFailure);
        }
    }
}
