package io.dtm.aggregator;

import io.dtm.aggregator.avro.SweepEvent;
import io.dtm.aggregator.avro.SweepEventKind;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;

import java.nio.ByteBuffer;
import java.util.function.Function;

/**
 * First stage: reads a source record as raw bytes and re-keys it by its sweep id, wrapped in a {@link SweepEvent} that
 * remembers where it came from. A value that does not decode becomes a dead letter here, as it has no sweep to go to.
 */
final class SweepKeyProcessor<T> implements Processor<String, byte[], String, SpecificRecord> {
    private final SweepEventKind kind;
    private final Deserializer<T> deserializer;
    private final Function<T, String> sweepId;
    private ProcessorContext<String, SpecificRecord> context;

    SweepKeyProcessor(SweepEventKind kind, Deserializer<T> deserializer, Function<T, String> sweepId) {
        this.kind = kind;
        this.deserializer = deserializer;
        this.sweepId = sweepId;
    }

    @Override
    public void init(ProcessorContext<String, SpecificRecord> context) {
        this.context = context;
    }

    @Override
    public void process(Record<String, byte[]> record) {
        RecordMetadata source = context.recordMetadata().orElseThrow();
        try {
            T value = RejectedRecord.decode(deserializer, source.topic(), record.value());
            SweepEvent event = SweepEvent.newBuilder()
                    .setKind(kind)
                    .setSourceTopic(source.topic())
                    .setPartition(source.partition())
                    .setOffset(source.offset())
                    .setKey(record.key())
                    .setPayload(ByteBuffer.wrap(record.value()))
                    .build();
            context.forward(record.withKey(sweepId.apply(value)).withValue(event));
        } catch (RejectedRecord e) {
            context.forward(record.withValue(RejectedRecord.deadLetter(source.topic(), source.partition(),
                    source.offset(), record.key(), record.value(), e.getMessage(), context.currentSystemTimeMs())));
        }
    }
}
