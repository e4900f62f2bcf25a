package io.dtm.aggregator;

import io.dtm.schemas.avro.DeadLetter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;

/** Dead letters written by the aggregator; each one is logged, so nothing is dropped silently. */
final class DeadLetters {
    private static final Logger log = LoggerFactory.getLogger(DeadLetters.class);

    static final String SERVICE = "aggregator";

    private DeadLetters() {}

    static DeadLetter of(String topic, int partition, long offset, String key, byte[] payload, String reason,
                         long failedAtMs) {
        log.warn("dead-lettering {}-{}@{} (key {}): {}", topic, partition, offset, key, reason);
        return DeadLetter.newBuilder()
                .setSourceTopic(topic)
                .setPartition(partition)
                .setOffset(offset)
                .setKey(key)
                .setPayload(payload == null ? null : ByteBuffer.wrap(payload))
                .setReason(reason)
                .setService(SERVICE)
                .setFailedAtMs(failedAtMs)
                .build();
    }
}
