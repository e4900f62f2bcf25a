package io.dtm.schemas.registry;

import java.util.ArrayList;
import java.util.List;

/** Turns a configured registry URL into a client. */
public final class SchemaRegistryClients {
    private SchemaRegistryClients() {}

    /**
     * A client of the registry at {@code url} ({@code http://host:port}, trailing slash ignored). A comma-separated
     * list names replicas, as Confluent's {@code schema.registry.url} does: the first that answers
     * {@code GET /subjects} is used. A single URL is not probed, so a client can be made before its registry is up.
     *
     * @throws IllegalArgumentException if a URL is malformed
     * @throws SchemaRegistryException  if none of several URLs answers
     */
    public static SchemaRegistryClient connect(String url) {
        return connect(url, RegistryClientSettings.NONE);
    }

    /** As {@link #connect(String)}, each client authenticating and trusting as {@code settings} say. */
    public static SchemaRegistryClient connect(String url, RegistryClientSettings settings) {
        if (url == null || url.isBlank()) {
            throw new IllegalArgumentException("schema registry URL is required");
        }
        List<HttpSchemaRegistryClient> candidates = new ArrayList<>();
        for (String part : url.split(",")) {
            if (!part.isBlank()) {
                candidates.add(new HttpSchemaRegistryClient(part, settings));
            }
        }
        if (candidates.isEmpty()) {
            throw new IllegalArgumentException("no schema registry URL in '" + url + "'");
        }
        if (candidates.size() == 1) {
            return candidates.get(0);
        }
        List<String> failures = new ArrayList<>();
        for (HttpSchemaRegistryClient candidate : candidates) {
            try {
                candidate.subjects();
                return candidate;
            } catch (SchemaRegistryException e) {
                failures.add(e.getMessage());
            }
        }
        throw new SchemaRegistryException(SchemaRegistryException.NO_RESPONSE,
                "no schema registry answered among " + url + ": " + String.join("; ", failures));
    }
}
