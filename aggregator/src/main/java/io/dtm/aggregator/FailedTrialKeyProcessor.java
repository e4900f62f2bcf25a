package io.dtm.aggregator;

import io.dtm.aggregator.avro.SweepEvent;
import io.dtm.aggregator.avro.SweepEventKind;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;

/**
 * First stage for {@link Topics#DEAD_LETTERS}: a dead letter of a trial shard is re-keyed by the trial's sweep, so the
 * sweep fails with its reason instead of waiting forever for a result that will never come. Everything else on the
 * topic (the aggregator's own dead letters, garbage the workers dead-lettered) is passed over: dead-lettering a dead
 * letter would feed it back to this processor forever.
 */
final class FailedTrialKeyProcessor implements Processor<String, byte[], String, SpecificRecord> {
    private static final Logger log = LoggerFactory.getLogger(FailedTrialKeyProcessor.class);

    private final Deserializer<DeadLetter> letters;
    private final Deserializer<ComponentTrial> trials;
    private ProcessorContext<String, SpecificRecord> context;

    FailedTrialKeyProcessor(Deserializer<DeadLetter> letters, Deserializer<ComponentTrial> trials) {
        this.letters = letters;
        this.trials = trials;
    }

    @Override
    public void init(ProcessorContext<String, SpecificRecord> context) {
        this.context = context;
    }

    @Override
    public void process(Record<String, byte[]> record) {
        RecordMetadata source = context.recordMetadata().orElseThrow();
        ComponentTrial trial;
        try {
            DeadLetter letter = RejectedRecord.decode(letters, source.topic(), record.value());
            if (!Topics.TRIALS.name().equals(letter.getSourceTopic()) || letter.getPayload() == null) {
                return;
            }
            trial = RejectedRecord.decode(trials, Topics.TRIALS.name(), SweepProcessor.bytes(letter.getPayload()));
        } catch (RejectedRecord e) {
            log.debug("dead letter at {}-{}@{} names no trial of a sweep: {}", source.topic(), source.partition(),
                    source.offset(), e.getMessage());
            return;
        }
        context.forward(record.withKey(trial.getSweepId()).withValue(SweepEvent.newBuilder()
                .setKind(SweepEventKind.TRIAL_FAILED)
                .setSourceTopic(source.topic())
                .setPartition(source.partition())
                .setOffset(source.offset())
                .setKey(record.key())
                .setPayload(ByteBuffer.wrap(record.value()))
                .build()));
    }
}
