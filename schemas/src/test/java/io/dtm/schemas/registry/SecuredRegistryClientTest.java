package io.dtm.schemas.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8, item 7: the registry client speaks to a registry behind HTTPS with a private CA and basic authentication,
 * configured with Confluent's property names. The registry here is a real HTTPS server answering {@code GET /subjects}
 * only to the right credentials.
 */
class SecuredRegistryClientTest {

    private static final String PASSWORD = "changeit";

    @TempDir
    Path dir;
    private HttpsServer server;
    private String url;
    private Path truststore;

    @BeforeEach
    void startHttpsRegistry() throws Exception {
        Path keystore = dir.resolve("server.p12");
        truststore = dir.resolve("trust.p12");
        Path cert = dir.resolve("server.der");
        keytool("-genkeypair", "-alias", "registry", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=localhost",
                "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-validity", "2", "-keystore", keystore.toString(),
                "-storetype", "PKCS12", "-storepass", PASSWORD);
        keytool("-exportcert", "-alias", "registry", "-keystore", keystore.toString(), "-storepass", PASSWORD,
                "-file", cert.toString());
        keytool("-importcert", "-noprompt", "-alias", "registry", "-file", cert.toString(), "-keystore",
                truststore.toString(), "-storetype", "PKCS12", "-storepass", PASSWORD);

        KeyStore keys = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(keystore)) {
            keys.load(in, PASSWORD.toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, PASSWORD.toCharArray());
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(kmf.getKeyManagers(), null, null);

        server = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setHttpsConfigurator(new HttpsConfigurator(ssl));
        String expected = "Basic " + Base64.getEncoder().encodeToString("dtm:s3cret".getBytes(StandardCharsets.UTF_8));
        server.createContext("/subjects", exchange -> {
            boolean authorized = expected.equals(exchange.getRequestHeaders().getFirst("Authorization"));
            byte[] body = (authorized ? "[\"dtm.trials-value\"]"
                    : "{\"error_code\": 401, \"message\": \"Unauthorized\"}").getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(authorized ? 200 : 401, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
        url = "https://127.0.0.1:" + server.getAddress().getPort();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    @Test
    void basicAuthAndAPrivateTruststoreReachTheRegistry() {
        Map<String, Object> props = Map.of(
                "security.protocol", "SASL_SSL",
                "basic.auth.credentials.source", "USER_INFO",
                "basic.auth.user.info", "dtm:s3cret",
                "schema.registry.ssl.truststore.location", truststore.toString(),
                "schema.registry.ssl.truststore.password", PASSWORD,
                "schema.registry.ssl.truststore.type", "PKCS12");
        RegistryClientSettings settings = RegistryClientSettings.from(props);
        assertEquals(List.of("dtm.trials-value"), SchemaRegistryClients.connect(url, settings).subjects());
        assertFalse(settings.toString().contains("s3cret"), settings.toString());
        assertEquals(Map.of("security.protocol", "SASL_SSL"), RegistryClientSettings.withoutRegistrySettings(props),
                "Kafka clients get none of the registry's settings");
    }

    @Test
    void withoutCredentialsOrTrustTheRegistryRefuses() {
        SchemaRegistryException unauthorized = assertThrows(SchemaRegistryException.class, () ->
                SchemaRegistryClients.connect(url, RegistryClientSettings.from(Map.of(
                        "schema.registry.ssl.truststore.location", truststore.toString(),
                        "schema.registry.ssl.truststore.password", PASSWORD))).subjects());
        assertEquals(401, unauthorized.errorCode(), unauthorized.getMessage());

        SchemaRegistryException untrusted = assertThrows(SchemaRegistryException.class, () ->
                SchemaRegistryClients.connect(url, RegistryClientSettings.from(Map.of(
                        "basic.auth.user.info", "dtm:s3cret"))).subjects());
        assertEquals(SchemaRegistryException.NO_RESPONSE, untrusted.errorCode());
        assertTrue(untrusted.getMessage().contains("SSL") || untrusted.getMessage().contains("certification"),
                untrusted.getMessage());
    }

    @Test
    void badSettingsAreNamed() {
        IllegalArgumentException source = assertThrows(IllegalArgumentException.class, () ->
                RegistryClientSettings.from(Map.of("basic.auth.credentials.source", "SASL_INHERIT")));
        assertTrue(source.getMessage().contains("basic.auth.credentials.source"), source.getMessage());
        assertThrows(IllegalArgumentException.class, () ->
                RegistryClientSettings.from(Map.of("basic.auth.user.info", "no-colon")));
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () ->
                RegistryClientSettings.from(Map.of("schema.registry.ssl.truststore.location", "/no/such.p12")));
        assertTrue(missing.getMessage().contains("/no/such.p12"), missing.getMessage());
    }

    private static void keytool(String... args) throws IOException, InterruptedException {
        List<String> command = new java.util.ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "keytool " + String.join(" ", args) + ": " + output);
    }
}
