package io.dtm.schemas.registry;

import static io.dtm.schemas.registry.SchemaRegistryCoreTest.ADDS_REQUIRED;
import static io.dtm.schemas.registry.SchemaRegistryCoreTest.CHANGES_TYPE;
import static io.dtm.schemas.registry.SchemaRegistryCoreTest.V1;
import static io.dtm.schemas.registry.SchemaRegistryCoreTest.V2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The HTTP client against the registry's own REST server, backed by an in-memory core (no Kafka). */
class HttpSchemaRegistryClientTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final SchemaRegistryCore core = new SchemaRegistryCore();
    private final RegistryHttpServer server = RegistryHttpServer.start(core, r -> { }, null, 0);
    private final HttpSchemaRegistryClient client = new HttpSchemaRegistryClient(server.url() + "/");

    @AfterEach
    void stop() {
        server.close();
    }

    @Test
    void registersAndReadsBackOverHttp() {
        assertTrue(server.url().startsWith("http://127.0.0.1:"), server.url());
        assertEquals(server.url(), client.baseUrl(), "trailing slash stripped");
        assertEquals(1, client.register("dtm.trials-value", V1));
        assertEquals(1, client.register("dtm.trials-value", V1));
        assertEquals(2, client.register("dtm.trials-value", V2));

        HttpSchemaRegistryClient fresh = new HttpSchemaRegistryClient(server.url());
        assertEquals(V1, fresh.getById(1));
        assertEquals(2, fresh.register("dtm.trials-value", V2), "idempotent on the server, not only in a cache");
        assertEquals(Optional.of(new RegisteredSchema("dtm.trials-value", 2, 2, V2)),
                fresh.latest("dtm.trials-value"));
        assertEquals(List.of(1, 2), fresh.versions("dtm.trials-value"));
        assertEquals(List.of("dtm.trials-value"), fresh.subjects());
        assertEquals(List.of(1, 2), core.versions("dtm.trials-value"), "the server's core holds what was sent");
    }

    @Test
    void subjectsWithReservedCharactersRoundTrip() {
        String subject = "odd subject/with+chars-value";
        int id = client.register(subject, V1);
        assertEquals(List.of(subject), core.subjects());
        assertEquals(id, client.latest(subject).orElseThrow().id());
    }

    @Test
    void incompatibleSchemaIsRefusedWithTheServersExplanation() {
        client.register("s", V2);
        IncompatibleSchemaException e = assertThrows(IncompatibleSchemaException.class,
                () -> client.register("s", ADDS_REQUIRED));
        assertEquals("s", e.subject());
        assertTrue(e.getMessage().contains("READER_FIELD_MISSING_DEFAULT_VALUE"), e.getMessage());
        assertFalse(client.testCompatibility("s", CHANGES_TYPE));
        assertTrue(client.testCompatibility("s", V1));
        assertTrue(client.testCompatibility("unknown", ADDS_REQUIRED));
    }

    @Test
    void unknownIdsAndSubjectsMapToTheInterfacesAnswers() {
        SchemaNotFoundException e = assertThrows(SchemaNotFoundException.class, () -> client.getById(99));
        assertEquals(99, e.id());
        assertEquals(Optional.empty(), client.latest("nobody"));
        assertEquals(List.of(), client.versions("nobody"));
    }

    @Test
    void schemasStayCachedWhenTheRegistryIsGone() {
        int id = client.register("s", V1);
        server.close();
        assertEquals(V1, client.getById(id));
        assertEquals(id, client.register("s", V1));
        SchemaRegistryException e = assertThrows(SchemaRegistryException.class, () -> client.versions("s"));
        assertEquals(SchemaRegistryException.NO_RESPONSE, e.errorCode());
        assertTrue(e.getMessage().contains("cannot reach schema registry at " + server.url()), e.getMessage());
    }

    @Test
    void serverAnswersErrorsInConfluentsShape() throws Exception {
        client.register("s", V1);
        assertError(send("GET", "/subjects/nobody/versions", null), 404, 40401, "subject 'nobody' not found");
        assertError(send("GET", "/subjects/s/versions/7", null), 404, 40402, "version 7");
        assertError(send("GET", "/subjects/s/versions/x", null), 422, 42202, "invalid version");
        assertError(send("GET", "/schemas/ids/5", null), 404, 40403, "schema id 5 not found");
        assertError(send("POST", "/subjects/s/versions", "{\"schema\": \"{not avro\"}"), 422, 42201,
                "invalid Avro schema");
        assertError(send("POST", "/subjects/s/versions", "{\"schema\": \"{}\", \"schemaType\": \"PROTOBUF\"}"), 422,
                42201, "AVRO only");
        assertError(send("POST", "/subjects/s/versions", "not json"), 422, 422, "not JSON");
        assertError(send("DELETE", "/subjects/s/versions", null), 405, 405, "DELETE");
        assertError(send("GET", "/mode", null), 404, 404, "unsupported route GET /mode");
    }

    @Test
    void serverAnswersLookupsConfigAndVerboseCompatibility() throws Exception {
        client.register("s", V2);
        HttpResponse<String> lookup = send("POST", "/subjects/s", body(V2.toString()));
        assertEquals(200, lookup.statusCode());
        assertEquals(1, JSON.readTree(lookup.body()).get("version").intValue());
        assertError(send("POST", "/subjects/s", body(V1.toString())), 404, 40403, "schema not found");

        assertEquals("BACKWARD", JSON.readTree(send("GET", "/config", null).body()).get("compatibilityLevel")
                .textValue());

        JsonNode verbose = JSON.readTree(send("POST", "/compatibility/subjects/s/versions/latest?verbose=true",
                body(CHANGES_TYPE.toString())).body());
        assertFalse(verbose.get("is_compatible").booleanValue());
        assertTrue(verbose.get("messages").get(0).textValue().contains("TYPE_MISMATCH"), verbose.toString());
        assertEquals(HttpSchemaRegistryClient.CONTENT_TYPE,
                send("GET", "/subjects", null).headers().firstValue("Content-Type").orElseThrow());
    }

    @Test
    void aFailingJournalAnswers500AndRegistersNothing() throws Exception {
        SchemaRegistryCore other = new SchemaRegistryCore();
        try (RegistryHttpServer failing = RegistryHttpServer.start(other, r -> {
            throw new IllegalStateException("broker unreachable");
        }, null, 0)) {
            HttpSchemaRegistryClient c = new HttpSchemaRegistryClient(failing.url());
            SchemaRegistryException e = assertThrows(SchemaRegistryException.class, () -> c.register("s", V1));
            assertEquals(50001, e.errorCode());
            assertTrue(e.getMessage().contains("broker unreachable"), e.getMessage());
            assertEquals(List.of(), other.subjects());
        }
    }

    @Test
    void connectPicksTheFirstRegistryThatAnswers() throws IOException {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0)) {
            closedPort = socket.getLocalPort();
        }
        SchemaRegistryClient picked = SchemaRegistryClients.connect(
                "http://127.0.0.1:" + closedPort + "/ , " + server.url() + "/");
        assertEquals(server.url(), ((HttpSchemaRegistryClient) picked).baseUrl());

        SchemaRegistryException none = assertThrows(SchemaRegistryException.class,
                () -> SchemaRegistryClients.connect("http://127.0.0.1:" + closedPort + ",http://127.0.0.1:" + closedPort));
        assertTrue(none.getMessage().startsWith("no schema registry answered"), none.getMessage());

        SchemaRegistryClient single = SchemaRegistryClients.connect("http://127.0.0.1:" + closedPort + "//");
        assertEquals("http://127.0.0.1:" + closedPort, ((HttpSchemaRegistryClient) single).baseUrl(),
                "a single URL is not probed");
    }

    @Test
    void malformedUrlsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> SchemaRegistryClients.connect(" "));
        assertThrows(IllegalArgumentException.class, () -> SchemaRegistryClients.connect(","));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SchemaRegistryClients.connect("localhost:8081"));
        assertTrue(e.getMessage().contains("localhost:8081"), e.getMessage());
    }

    private HttpResponse<String> send(String method, String path, String body) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(server.url() + path))
                .header("Content-Type", HttpSchemaRegistryClient.CONTENT_TYPE);
        request.method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofString(body));
        return HttpClient.newHttpClient().send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String body(String schema) throws IOException {
        return JSON.writeValueAsString(java.util.Map.of("schema", schema));
    }

    private static void assertError(HttpResponse<String> response, int status, int code, String messagePart)
            throws IOException {
        assertEquals(status, response.statusCode(), response.body());
        JsonNode error = JSON.readTree(response.body());
        assertEquals(code, error.get("error_code").intValue(), response.body());
        assertTrue(error.get("message").textValue().contains(messagePart), response.body());
    }
}
