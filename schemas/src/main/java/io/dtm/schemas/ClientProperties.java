package io.dtm.schemas;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;

/**
 * Extra Kafka client settings (SASL, TLS, timeouts) from a {@code .properties} file, as Kafka's own tools take them
 * with {@code --command-config}, so that every service reaches a secured cluster the same way.
 */
public final class ClientProperties {
    private ClientProperties() {}

    /**
     * The properties in {@code file}, read as UTF-8; an empty map when {@code file} is null (no extra settings).
     *
     * @throws IllegalArgumentException naming the file if it is missing, not a regular file or unreadable
     */
    public static Map<String, Object> load(Path file) {
        if (file == null) {
            return Map.of();
        }
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("Kafka client properties file " + file.toAbsolutePath()
                    + (Files.exists(file) ? " is not a regular file" : " does not exist"));
        }
        Properties properties = new Properties();
        try (Reader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            properties.load(reader);
        } catch (IOException | IllegalArgumentException e) {
            throw new IllegalArgumentException("cannot read Kafka client properties file " + file.toAbsolutePath()
                    + ": " + e, e);
        }
        Map<String, Object> loaded = new HashMap<>();
        for (String name : properties.stringPropertyNames()) {
            loaded.put(name, properties.getProperty(name));
        }
        return Map.copyOf(loaded);
    }

    /** A new, modifiable map: {@code base} with every entry of {@code extra} put over it. Neither input changes. */
    public static Map<String, Object> with(Map<String, Object> base, Map<String, Object> extra) {
        Map<String, Object> merged = new HashMap<>(Objects.requireNonNull(base, "base"));
        merged.putAll(Objects.requireNonNull(extra, "extra"));
        return merged;
    }
}
