package io.dtm.producers;

import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.SchemaRegistryCore;
import io.dtm.schemas.serde.AvroSerdes;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.dtm.planner.TestSweeps.sweep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SweepPublisherTest {
    private final SchemaRegistryCore registry = new SchemaRegistryCore();
    private final MockProducer<String, byte[]> producer =
            new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer());
    private final List<Map<String, Object>> producerConfigs = new ArrayList<>();
    private final SweepPublisher publisher = new SweepPublisher(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "broker:9092"),
            registry, props -> {
                producerConfigs.add(props);
                return producer;
            });

    @Test
    void publishesTheSweepAndItsRoundZeroTrialsInOneTransaction() {
        SweepRequest s = sweep().setInt8(true).build();
        SweepPublisher.Summary summary = publisher.publish(s);

        assertEquals(new SweepPublisher.Summary("sweep-1", 6, 18, List.of()), summary);
        assertTrue(producer.transactionCommitted());
        assertEquals(1, producer.commitCount());
        List<ProducerRecord<String, byte[]>> sent = producer.history();
        assertEquals(19, sent.size());
        assertEquals(Topics.SWEEPS.name(), sent.get(0).topic());
        assertEquals("sweep-1", sent.get(0).key());
        assertEquals(s, AvroSerdes.deserializer(SweepRequest.class, registry).deserialize(Topics.SWEEPS.name(), sent.get(0).value()));

        Deserializer<ComponentTrial> trials = AvroSerdes.deserializer(ComponentTrial.class, registry);
        List<ComponentTrial> expected = TrialPlanner.candidates(s, 0, List.of());
        for (int i = 0; i < expected.size(); i++) {
            ProducerRecord<String, byte[]> record = sent.get(i + 1);
            ComponentTrial trial = trials.deserialize(Topics.TRIALS.name(), record.value());
            assertEquals(Topics.TRIALS.name(), record.topic());
            assertEquals(Topics.shardKey(trial.getTrialId(), trial.getShard()), record.key());
            assertEquals(expected.get(i), trial);
        }
    }

    @Test
    void theSummaryNamesWhatIsNeverPlannedAndWhy() {
        SweepRequest s = sweep().setKinds(new ArrayList<>(List.of("prune", "nm:2:4"))).build();
        SweepPublisher.Summary summary = publisher.publish(s);
        assertEquals(3, summary.trials(), "prune for each of a, b, c; nm:2:4 fits none of their 10 columns");
        assertEquals(List.of("a nm:2:4: 10 input columns are not a multiple of 4",
                "b nm:2:4: 10 input columns are not a multiple of 4", "c nm:2:4: 10 input columns are not a multiple of 4"),
                summary.notPlanned());
    }

    @Test
    void theProducerIsTransactionalPerSweepAndIdempotent() {
        publisher.publish(sweep().build());
        Map<String, Object> config = producerConfigs.get(0);
        assertEquals("broker:9092", config.get(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG));
        assertEquals("dtm-sweep-sweep-1", config.get(ProducerConfig.TRANSACTIONAL_ID_CONFIG));
        assertEquals(true, config.get(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG));
        assertEquals("all", config.get(ProducerConfig.ACKS_CONFIG));
        assertTrue(producer.closed());
    }

    @Test
    void anInvalidSweepPublishesNothing() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> publisher.publish(sweep().setTokens(0).build()));
        assertTrue(e.getMessage().contains("tokens"), e.getMessage());
        assertTrue(producerConfigs.isEmpty());
        assertTrue(producer.history().isEmpty());
    }

    @Test
    void aFailedSendAbortsTheWholeSweep() {
        producer.sendException = new KafkaException("broker gone");
        assertThrows(KafkaException.class, () -> publisher.publish(sweep().build()));
        assertTrue(producer.transactionAborted());
        assertFalse(producer.transactionCommitted());
        assertTrue(producer.history().isEmpty());
        assertTrue(producer.closed());
    }
}
