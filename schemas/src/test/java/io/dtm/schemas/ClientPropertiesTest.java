package io.dtm.schemas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClientPropertiesTest {

    @TempDir
    Path dir;

    @Test
    void loadsAPropertiesFile() throws IOException {
        Path file = dir.resolve("client.properties");
        Files.writeString(file, String.join("\n",
                "# SASL over TLS",
                "security.protocol=SASL_SSL",
                "sasl.mechanism = PLAIN",
                "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\",
                "    username=\"dtm\" password=\"p\u00e4ss\";",
                ""), StandardCharsets.UTF_8);

        Map<String, Object> loaded = ClientProperties.load(file);

        assertEquals(Map.of(
                "security.protocol", "SASL_SSL",
                "sasl.mechanism", "PLAIN",
                "sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required "
                        + "username=\"dtm\" password=\"p\u00e4ss\";"), loaded);
    }

    @Test
    void noFileMeansNoExtraSettings() {
        assertEquals(Map.of(), ClientProperties.load(null));
    }

    @Test
    void aMissingFileOrADirectoryIsNamed() {
        Path missing = dir.resolve("nope.properties");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ClientProperties.load(missing));
        assertTrue(e.getMessage().contains(missing.toAbsolutePath().toString()), e.getMessage());
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());

        IllegalArgumentException d = assertThrows(IllegalArgumentException.class, () -> ClientProperties.load(dir));
        assertTrue(d.getMessage().contains("not a regular file"), d.getMessage());
    }

    @Test
    void malformedContentIsReportedWithTheFile() throws IOException {
        Path file = dir.resolve("bad.properties");
        Files.writeString(file, "key=\\u12", StandardCharsets.UTF_8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ClientProperties.load(file));
        assertTrue(e.getMessage().contains(file.toAbsolutePath().toString()), e.getMessage());
    }

    @Test
    void extraSettingsOverrideTheBaseWithoutChangingEither() {
        Map<String, Object> base = Map.of("bootstrap.servers", "a:9092", "acks", "all");
        Map<String, Object> extra = Map.of("bootstrap.servers", "b:9093", "security.protocol", "SSL");

        Map<String, Object> merged = ClientProperties.with(base, extra);

        assertEquals(Map.of("bootstrap.servers", "b:9093", "acks", "all", "security.protocol", "SSL"), merged);
        assertEquals("a:9092", base.get("bootstrap.servers"));
        merged.put("client.id", "x");
        assertEquals(new HashMap<>(Map.of("bootstrap.servers", "b:9093", "acks", "all", "security.protocol", "SSL",
                "client.id", "x")), merged);
    }
}
