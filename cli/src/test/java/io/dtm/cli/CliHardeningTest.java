package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import io.dtm.local.EmbeddedCluster;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 8, items 6 and 7, as a user meets them on the command line. */
class CliHardeningTest {

    @TempDir
    Path dir;

    @Test
    void aPromptFileWithInvalidUtf8NamesTheFileAndLine() throws Exception {
        Path prompts = dir.resolve("prompts.txt");
        byte[] bad = "first prompt\nsecond prompt\nthird \u00e9".getBytes(StandardCharsets.UTF_8);
        bad[bad.length - 1] = (byte) 0x28; // the second byte of 'é' replaced: an invalid sequence
        Files.write(prompts, bad);
        EngineCommandsTest.Run run = EngineCommandsTest.dtm("sweep", "start", "--bootstrap-servers", "127.0.0.1:1",
                "--registry-url", "http://127.0.0.1:1", "--model", E2e.tinyModel().toString(), "--prompts",
                prompts.toString());
        assertEquals(2, run.exit());
        assertTrue(run.err().contains("prompt file " + prompts + " line 3 is not valid UTF-8 (byte 7 of the line)"),
                run.err());
    }

    @Test
    void tokensBeyondTheModelsPositionsAreRefusedBeforeAnythingIsPublished() {
        EngineCommandsTest.Run run = EngineCommandsTest.dtm("sweep", "start", "--bootstrap-servers", "127.0.0.1:1",
                "--registry-url", "http://127.0.0.1:1", "--model", E2e.tinyModel().toString(), "--tokens",
                "2000000000");
        assertEquals(2, run.exit());
        assertTrue(run.err().contains("--tokens 2000000000 leaves no position for a prompt")
                && run.err().contains("has 512 (max_position_embeddings)"), run.err());
    }

    @Test
    void theLargestShardSizePublishesOneShardPerTrial() {
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null)) {
            EngineCommandsTest.Run run = EngineCommandsTest.dtm("sweep", "start", "--bootstrap-servers",
                    cluster.bootstrapServers(), "--registry-url", cluster.registryUrl(), "--model",
                    E2e.tinyModel().toString(), "--components", E2e.COMPONENTS, "--tokens", "8", "--rounds", "1",
                    "--sweep-id", "big-shards", "--shard-size", "2147483647");
            assertEquals(0, run.exit(), run.err());
            assertEquals("sweep big-shards: 6 trials in 6 shards published for round 0 of 1", run.lastLine());
        }
    }

    /** The registry client reads its credentials from --client-config; Kafka clients never see them. */
    @Test
    void theClientConfigFileCarriesTheRegistryCredentials() throws Exception {
        String expected = "Basic " + Base64.getEncoder().encodeToString("dtm:s3cret".getBytes(StandardCharsets.UTF_8));
        HttpServer registry = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        registry.createContext("/subjects", exchange -> {
            boolean ok = expected.equals(exchange.getRequestHeaders().getFirst("Authorization"));
            byte[] body = (ok ? "[\"dtm.sweeps-value\"]" : "{\"error_code\": 401, \"message\": \"no\"}")
                    .getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(ok ? 200 : 401, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        registry.start();
        try {
            Path config = Files.writeString(dir.resolve("client.properties"),
                    "security.protocol=PLAINTEXT\nbasic.auth.credentials.source=USER_INFO\nbasic.auth.user.info=dtm:s3cret\n");
            ConnectionMixin connection = new ConnectionMixin();
            connection.bootstrapServers = "127.0.0.1:9092";
            connection.registryUrl = "http://127.0.0.1:" + registry.getAddress().getPort();
            connection.clientConfig = config;
            assertEquals(List.of("dtm.sweeps-value"), connection.registry().subjects());
            Map<String, Object> kafka = connection.clientProps();
            assertEquals("PLAINTEXT", kafka.get("security.protocol"));
            assertFalse(kafka.keySet().stream().anyMatch(k -> k.startsWith("basic.auth")), kafka.toString());
        } finally {
            registry.stop(0);
        }
    }
}
