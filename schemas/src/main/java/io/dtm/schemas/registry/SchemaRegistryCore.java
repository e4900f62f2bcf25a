package io.dtm.schemas.registry;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityResult;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;

/**
 * The registry itself, in memory and thread-safe: ids are global and increasing from 1, versions count from 1 per
 * subject, an identical schema gets the same id under every subject, and a new version must be BACKWARD compatible
 * with the subject's latest (Confluent's default level).
 *
 * <p>It is the state behind {@link KafkaSchemaRegistryServer}, which persists every new version through
 * {@link #register(String, Schema, Consumer)} and replays them with {@link #restore(RegisteredSchema)}; on its own it
 * is a complete registry for tests and single-process use.
 */
public final class SchemaRegistryCore implements SchemaRegistryClient {

    private final Map<String, NavigableMap<Integer, RegisteredSchema>> subjects = new HashMap<>();
    private final Map<Integer, Schema> schemasById = new HashMap<>();
    private final Map<String, Integer> idsBySchemaText = new HashMap<>();
    private int nextId = 1;

    @Override
    public int register(String subject, Schema schema) {
        return register(subject, schema, created -> { }).id();
    }

    /**
     * Registers as {@link #register(String, Schema)} does and returns the version the schema has under the subject.
     * {@code beforeCommit} sees a new version before anyone else can, under this registry's lock; if it throws, the
     * registry is left unchanged and the exception propagates. That is where a durable store writes, so that an id is
     * never handed out before it is persisted. It is not called when the schema was already registered.
     */
    public synchronized RegisteredSchema register(String subject, Schema schema,
                                                  Consumer<? super RegisteredSchema> beforeCommit) {
        requireSubject(subject);
        Objects.requireNonNull(schema, "schema");
        Objects.requireNonNull(beforeCommit, "beforeCommit");
        String text = SchemaText.of(schema);
        Integer knownId = idsBySchemaText.get(text);
        NavigableMap<Integer, RegisteredSchema> versions = subjects.get(subject);
        if (versions != null) {
            if (knownId != null) {
                for (RegisteredSchema existing : versions.values()) {
                    if (existing.id() == knownId) {
                        return existing;
                    }
                }
            }
            RegisteredSchema latest = versions.lastEntry().getValue();
            String problem = incompatibility(subject, schema, latest);
            if (problem != null) {
                throw new IncompatibleSchemaException(subject, problem);
            }
        }
        RegisteredSchema created = new RegisteredSchema(subject, versions == null ? 1 : versions.lastKey() + 1,
                knownId != null ? knownId : nextId, schema);
        beforeCommit.accept(created);
        apply(created);
        return created;
    }

    /**
     * Replays a version read back from a store, keeping its id and version. A later record for the same subject and
     * version replaces the earlier one, which is what log compaction of the store would leave anyway.
     *
     * @throws IllegalStateException if the id already names a different schema: the store was written by two
     *                               registries at once and cannot be trusted
     */
    public synchronized void restore(RegisteredSchema registered) {
        Objects.requireNonNull(registered, "registered");
        apply(registered);
    }

    private void apply(RegisteredSchema registered) {
        String text = SchemaText.of(registered.schema());
        Schema holder = schemasById.get(registered.id());
        if (holder != null && !SchemaText.of(holder).equals(text)) {
            throw new IllegalStateException("schema id " + registered.id() + " of subject '" + registered.subject()
                    + "' version " + registered.version() + " already names a different schema");
        }
        schemasById.putIfAbsent(registered.id(), registered.schema());
        idsBySchemaText.putIfAbsent(text, registered.id());
        subjects.computeIfAbsent(registered.subject(), s -> new TreeMap<>()).put(registered.version(), registered);
        nextId = Math.max(nextId, registered.id() + 1);
    }

    @Override
    public synchronized Schema getById(int id) {
        Schema schema = schemasById.get(id);
        if (schema == null) {
            throw new SchemaNotFoundException(id);
        }
        return schema;
    }

    @Override
    public synchronized Optional<RegisteredSchema> latest(String subject) {
        requireSubject(subject);
        NavigableMap<Integer, RegisteredSchema> versions = subjects.get(subject);
        return versions == null ? Optional.empty() : Optional.of(versions.lastEntry().getValue());
    }

    /** The given version of a subject, or empty if the subject or version does not exist. */
    public synchronized Optional<RegisteredSchema> version(String subject, int version) {
        requireSubject(subject);
        NavigableMap<Integer, RegisteredSchema> versions = subjects.get(subject);
        return versions == null ? Optional.empty() : Optional.ofNullable(versions.get(version));
    }

    @Override
    public synchronized List<Integer> versions(String subject) {
        requireSubject(subject);
        NavigableMap<Integer, RegisteredSchema> versions = subjects.get(subject);
        return versions == null ? List.of() : List.copyOf(versions.keySet());
    }

    @Override
    public synchronized boolean testCompatibility(String subject, Schema schema) {
        return compatibilityProblem(subject, schema).isEmpty();
    }

    /**
     * Why {@code schema} could not be registered under {@code subject}, or empty if it could. The server answers the
     * compatibility endpoint with it, so callers see the same explanation a failed registration would give.
     */
    public synchronized Optional<String> compatibilityProblem(String subject, Schema schema) {
        requireSubject(subject);
        Objects.requireNonNull(schema, "schema");
        NavigableMap<Integer, RegisteredSchema> versions = subjects.get(subject);
        return versions == null ? Optional.empty()
                : Optional.ofNullable(incompatibility(subject, schema, versions.lastEntry().getValue()));
    }

    @Override
    public synchronized List<String> subjects() {
        List<String> names = new ArrayList<>(subjects.keySet());
        names.sort(null);
        return names;
    }

    /** Null when {@code candidate}, as reader, can read what {@code latest} wrote; otherwise every reason it cannot. */
    private static String incompatibility(String subject, Schema candidate, RegisteredSchema latest) {
        SchemaCompatibilityResult result =
                SchemaCompatibility.checkReaderWriterCompatibility(candidate, latest.schema()).getResult();
        if (result.getCompatibility() == SchemaCompatibilityType.COMPATIBLE) {
            return null;
        }
        return "schema for subject '" + subject + "' is not BACKWARD compatible with version " + latest.version()
                + " (id " + latest.id() + "): " + result.getIncompatibilities().stream()
                .map(i -> i.getType() + " at " + i.getLocation() + ": " + i.getMessage())
                .collect(Collectors.joining("; "));
    }

    private static void requireSubject(String subject) {
        if (subject == null || subject.isBlank()) {
            throw new IllegalArgumentException("subject is required");
        }
    }
}
