package io.dtm.schemas.registry;

import java.util.Objects;
import org.apache.avro.Schema;

/** One version of a subject: Confluent's {@code {"subject","version","id","schema"}}. */
public record RegisteredSchema(String subject, int version, int id, Schema schema) {

    public RegisteredSchema {
        if (subject == null || subject.isBlank()) {
            throw new IllegalArgumentException("subject is required");
        }
        if (version < 1) {
            throw new IllegalArgumentException("version of subject '" + subject + "' must be >= 1, was " + version);
        }
        if (id < 0) {
            throw new IllegalArgumentException("schema id of subject '" + subject + "' must be >= 0, was " + id);
        }
        Objects.requireNonNull(schema, "schema");
    }
}
