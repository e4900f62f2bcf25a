package io.dtm.aggregator;

import io.dtm.schemas.DeadLetters;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.registry.SchemaRegistryException;
import org.apache.kafka.common.serialization.Deserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** A record the aggregator cannot use, with the reason that goes into its dead letter. */
final class RejectedRecord extends Exception {
    private static final Logger log = LoggerFactory.getLogger(RejectedRecord.class);

    private static final String SERVICE = "aggregator";

    RejectedRecord(String reason) {
        super(reason, null, false, false);
    }

    /**
     * Decodes a value, rejecting bytes that are not a record of the type. A registry that cannot be reached is not the
     * record's fault: that failure propagates, so the task fails and the record is processed again later instead of
     * being dead-lettered.
     */
    static <T> T decode(Deserializer<T> deserializer, String topic, byte[] bytes) throws RejectedRecord {
        if (bytes == null || bytes.length == 0) {
            throw new RejectedRecord("no value (tombstone or empty record)");
        }
        try {
            return deserializer.deserialize(topic, bytes);
        } catch (RuntimeException e) {
            if (SchemaRegistryException.isTransient(e)) {
                throw e;
            }
            throw new RejectedRecord("cannot deserialize: " + e.getMessage());
        }
    }

    /** The dead letter of a rejected record; each one is logged, so nothing is dropped silently. */
    static DeadLetter deadLetter(String topic, int partition, long offset, String key, byte[] payload, String reason,
                                 long failedAtMs) {
        log.warn("dead-lettering {}-{}@{} (key {}): {}", topic, partition, offset, key, reason);
        return DeadLetters.of(SERVICE, topic, partition, offset, key, payload, reason, failedAtMs);
    }
}
