package io.dtm.schemas.registry;

import java.util.List;
import java.util.Optional;
import org.apache.avro.Schema;

/**
 * The part of a Confluent-compatible schema registry the pipeline uses. Shaped after Confluent's
 * {@code SchemaRegistryClient} so that its official client could stand in behind an adapter without touching callers.
 *
 * <p>Subjects follow Confluent's {@code TopicNameStrategy}: {@code <topic>-value}. Compatibility is BACKWARD against
 * the latest version: a new schema, as reader, must read everything written with the latest registered schema, so
 * consumers can be upgraded before producers.
 */
public interface SchemaRegistryClient {

    /**
     * Registers {@code schema} under {@code subject} and returns its global id. Idempotent: a schema already registered
     * under the subject (at any version) returns its existing id without a compatibility check, as Confluent does.
     *
     * @throws IncompatibleSchemaException if the schema cannot read data written with the subject's latest version
     */
    int register(String subject, Schema schema);

    /**
     * The schema with this global id.
     *
     * @throws SchemaNotFoundException if no schema has this id
     */
    Schema getById(int id);

    /** The subject's latest version, or empty if the subject has never been registered. */
    Optional<RegisteredSchema> latest(String subject);

    /** The subject's versions, ascending; empty if the subject has never been registered. */
    List<Integer> versions(String subject);

    /** Whether {@code schema} could be registered under {@code subject}; always true for a new subject. */
    boolean testCompatibility(String subject, Schema schema);

    /** Every registered subject, sorted. */
    List<String> subjects();
}
