package io.dtm.aggregator;

import io.dtm.schemas.registry.SchemaRegistryException;
import org.apache.kafka.common.serialization.Deserializer;

/** A record the aggregator cannot use, with the reason that goes into its dead letter. */
final class RejectedRecord extends Exception {

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
}
