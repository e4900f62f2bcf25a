package io.dtm.schemas;

import io.dtm.schemas.avro.DeadLetter;
import java.nio.ByteBuffer;

/** The dead letter of a record some stage gave up on: where the record was, its bytes as read, and why. */
public final class DeadLetters {
    private DeadLetters() {}

    /**
     * @param service the stage that gave up: {@code gpu-worker} or {@code aggregator}
     * @param payload the record's value exactly as read (null for a tombstone)
     */
    public static DeadLetter of(String service, String sourceTopic, int partition, long offset, String key,
                                byte[] payload, String reason, long failedAtMs) {
        return DeadLetter.newBuilder()
                .setSourceTopic(sourceTopic)
                .setPartition(partition)
                .setOffset(offset)
                .setKey(key)
                .setPayload(payload == null ? null : ByteBuffer.wrap(payload))
                .setReason(reason)
                .setService(service)
                .setFailedAtMs(failedAtMs)
                .build();
    }
}
