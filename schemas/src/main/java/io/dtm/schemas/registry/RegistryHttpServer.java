package io.dtm.schemas.registry;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import io.dtm.schemas.http.BoundedHttpServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import org.apache.avro.Schema;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Confluent's REST API over a {@link SchemaRegistryCore}, on the JDK's HTTP server. New versions go through
 * {@code journal} before they are answered; what the journal is (a Kafka topic, nothing) is the owner's business.
 *
 * <p>Routes: {@code GET /subjects}, {@code GET /subjects/{s}/versions}, {@code POST /subjects/{s}/versions},
 * {@code GET /subjects/{s}/versions/{n|latest}}, {@code POST /subjects/{s}} (is this schema registered?),
 * {@code GET /schemas/ids/{id}}, {@code POST /compatibility/subjects/{s}/versions/latest}, {@code GET /config}.
 */
final class RegistryHttpServer implements AutoCloseable {

    static final String DEFAULT_HOST = "127.0.0.1";

    private static final Logger LOG = LoggerFactory.getLogger(RegistryHttpServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int SUBJECT_NOT_FOUND = 40401;
    private static final int VERSION_NOT_FOUND = 40402;
    private static final int INVALID_VERSION = 42202;
    private static final int STORE_ERROR = 50001;
    private static final int INTERNAL_ERROR = 500;
    private static final String ROUTES = "GET /subjects, GET|POST /subjects/{subject}/versions, "
            + "GET /subjects/{subject}/versions/{version|latest}, POST /subjects/{subject}, GET /schemas/ids/{id}, "
            + "POST /compatibility/subjects/{subject}/versions/latest, GET /config";

    private final SchemaRegistryCore core;
    private final Consumer<? super RegisteredSchema> journal;
    private final BoundedHttpServer server;

    private RegistryHttpServer(SchemaRegistryCore core, Consumer<? super RegisteredSchema> journal,
                               BoundedHttpServer server) {
        this.core = core;
        this.journal = journal;
        this.server = server;
    }

    /** Binds {@code host:port} ({@code null} host: 127.0.0.1; port 0: any free port) and starts serving. */
    static RegistryHttpServer start(SchemaRegistryCore core, Consumer<? super RegisteredSchema> journal, String host,
                                    int port) {
        return start(core, journal, host, port, BoundedHttpServer.Limits.defaults());
    }

    static RegistryHttpServer start(SchemaRegistryCore core, Consumer<? super RegisteredSchema> journal, String host,
                                    int port, BoundedHttpServer.Limits limits) {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("invalid registry port " + port);
        }
        String bindHost = host == null || host.isBlank() ? DEFAULT_HOST : host;
        BoundedHttpServer server;
        try {
            server = BoundedHttpServer.bind(new InetSocketAddress(bindHost, port), limits, "schema-registry-http");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot bind the schema registry to " + bindHost + ":" + port, e);
        }
        RegistryHttpServer registry = new RegistryHttpServer(core, journal, server);
        server.route("/", registry::handle);
        server.start();
        return registry;
    }

    String url() {
        InetSocketAddress address = server.address();
        String host = address.getHostString();
        return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + address.getPort();
    }

    @Override
    public void close() {
        server.close();
    }

    private void handle(HttpExchange exchange, byte[] body) throws IOException {
        Answer answer;
        try {
            answer = route(exchange.getRequestMethod(), segments(exchange.getRequestURI().getRawPath()),
                    exchange.getRequestURI().getRawQuery(), body);
        } catch (ApiError e) {
            answer = error(e.status, e.code, e.getMessage());
        } catch (IncompatibleSchemaException e) {
            answer = error(409, IncompatibleSchemaException.ERROR_CODE, e.getMessage());
        } catch (InvalidSchemaException e) {
            answer = error(422, InvalidSchemaException.ERROR_CODE, e.getMessage());
        } catch (SchemaNotFoundException e) {
            answer = error(404, SchemaNotFoundException.ERROR_CODE, e.getMessage());
        } catch (RuntimeException e) {
            LOG.error("schema registry failed {} {}", exchange.getRequestMethod(), exchange.getRequestURI(), e);
            answer = error(500, INTERNAL_ERROR, "internal error: " + e);
        }
        BoundedHttpServer.respond(exchange, answer.status, HttpSchemaRegistryClient.CONTENT_TYPE,
                JSON.writeValueAsBytes(answer.body));
    }

    private Answer route(String method, List<String> path, String query, byte[] request) {
        int n = path.size();
        if (n == 1 && path.get(0).equals("subjects")) {
            requireMethod(method, "GET", path);
            return ok(core.subjects());
        }
        if (n == 1 && path.get(0).equals("config")) {
            requireMethod(method, "GET", path);
            return ok(JSON.createObjectNode().put("compatibilityLevel", "BACKWARD"));
        }
        if (n == 2 && path.get(0).equals("subjects")) {
            requireMethod(method, "POST", path);
            return lookUp(path.get(1), readSchema(request));
        }
        if (n == 3 && path.get(0).equals("subjects") && path.get(2).equals("versions")) {
            String subject = path.get(1);
            if (method.equals("POST")) {
                return register(subject, readSchema(request));
            }
            requireMethod(method, "GET", path);
            List<Integer> versions = core.versions(subject);
            if (versions.isEmpty()) {
                throw subjectNotFound(subject);
            }
            return ok(versions);
        }
        if (n == 4 && path.get(0).equals("subjects") && path.get(2).equals("versions")) {
            requireMethod(method, "GET", path);
            return ok(describe(version(path.get(1), path.get(3))));
        }
        if (n == 3 && path.get(0).equals("schemas") && path.get(1).equals("ids")) {
            requireMethod(method, "GET", path);
            int id = parseInt(path.get(2), 404, SchemaNotFoundException.ERROR_CODE, "schema id");
            return ok(JSON.createObjectNode().put("schema", core.getById(id).toString()));
        }
        if (n == 5 && path.get(0).equals("compatibility") && path.get(1).equals("subjects")
                && path.get(3).equals("versions") && path.get(4).equals("latest")) {
            requireMethod(method, "POST", path);
            Optional<String> problem = core.compatibilityProblem(path.get(2), readSchema(request));
            ObjectNode body = JSON.createObjectNode().put("is_compatible", problem.isEmpty());
            if (query != null && Arrays.asList(query.split("&")).contains("verbose=true")) {
                body.putArray("messages").addAll(problem.stream().map(JSON.getNodeFactory()::textNode).toList());
            }
            return ok(body);
        }
        throw new ApiError(404, 404, "unsupported route " + method + " /" + String.join("/", path)
                + "; this registry serves " + ROUTES);
    }

    private Answer register(String subject, Schema schema) {
        RegisteredSchema registered = core.register(subject, schema, created -> {
            try {
                journal.accept(created);
            } catch (RuntimeException e) {
                throw new ApiError(500, STORE_ERROR, "cannot store subject '" + subject + "' version "
                        + created.version() + ": " + e.getMessage());
            }
            LOG.info("registered subject '{}' version {} as schema id {}", created.subject(), created.version(),
                    created.id());
        });
        return ok(JSON.createObjectNode().put("id", registered.id()));
    }

    private Answer lookUp(String subject, Schema schema) {
        if (core.versions(subject).isEmpty()) {
            throw subjectNotFound(subject);
        }
        String text = SchemaText.of(schema);
        for (int version : core.versions(subject)) {
            RegisteredSchema candidate = core.version(subject, version).orElseThrow();
            if (SchemaText.of(candidate.schema()).equals(text)) {
                return ok(describe(candidate));
            }
        }
        throw new ApiError(404, SchemaNotFoundException.ERROR_CODE,
                "schema not found under subject '" + subject + "'");
    }

    private RegisteredSchema version(String subject, String version) {
        Optional<RegisteredSchema> found;
        if (version.equals("latest") || version.equals("-1")) {
            found = core.latest(subject);
        } else {
            int number = parseInt(version, 422, INVALID_VERSION, "version");
            if (number < 1) {
                throw new ApiError(422, INVALID_VERSION, "invalid version " + version + ": versions start at 1");
            }
            found = core.version(subject, number);
        }
        if (found.isPresent()) {
            return found.get();
        }
        if (core.versions(subject).isEmpty()) {
            throw subjectNotFound(subject);
        }
        throw new ApiError(404, VERSION_NOT_FOUND, "version " + version + " of subject '" + subject + "' not found");
    }

    private static ObjectNode describe(RegisteredSchema registered) {
        return JSON.createObjectNode().put("subject", registered.subject()).put("version", registered.version())
                .put("id", registered.id()).put("schema", registered.schema().toString());
    }

    /** The schema of a request body {@code {"schema": "...", "schemaType": "AVRO"}}; only Avro is served. */
    private static Schema readSchema(byte[] request) {
        JsonNode body;
        try {
            body = JSON.readTree(request);
        } catch (IOException e) {
            throw new ApiError(422, 422, "request body is not JSON: "
                    + (e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage()));
        }
        if (body == null || !body.path("schema").isTextual()) {
            throw new ApiError(422, InvalidSchemaException.ERROR_CODE,
                    "request body must be {\"schema\": \"<Avro schema as a JSON string>\"}");
        }
        String type = body.path("schemaType").asText("AVRO");
        if (!type.equals("AVRO")) {
            throw new ApiError(422, InvalidSchemaException.ERROR_CODE,
                    "schema type " + type + " is not supported; this registry serves AVRO only");
        }
        return SchemaText.parse(body.get("schema").textValue());
    }

    private static void requireMethod(String method, String expected, List<String> path) {
        if (!method.equals(expected)) {
            throw new ApiError(405, 405, "method " + method + " not allowed on /" + String.join("/", path)
                    + "; use " + expected);
        }
    }

    private static int parseInt(String text, int status, int code, String what) {
        try {
            return Integer.parseInt(text);
        } catch (NumberFormatException e) {
            throw new ApiError(status, code, "invalid " + what + " '" + text + "'");
        }
    }

    private static ApiError subjectNotFound(String subject) {
        return new ApiError(404, SUBJECT_NOT_FOUND, "subject '" + subject + "' not found");
    }

    /** Path segments, percent-decoded one by one so an encoded '/' inside a subject stays inside it. */
    private static List<String> segments(String rawPath) {
        List<String> segments = new ArrayList<>();
        for (String raw : rawPath.split("/")) {
            if (!raw.isEmpty()) {
                try {
                    segments.add(URLDecoder.decode(raw.replace("+", "%2B"), StandardCharsets.UTF_8));
                } catch (IllegalArgumentException e) {
                    throw new ApiError(404, 404, "malformed path " + rawPath + ": " + e.getMessage());
                }
            }
        }
        return segments;
    }

    private static Answer ok(Object body) {
        return new Answer(200, body);
    }

    private static Answer error(int status, int code, String message) {
        return new Answer(status, JSON.createObjectNode().put("error_code", code).put("message", message));
    }

    private record Answer(int status, Object body) {}

    /** A refusal with Confluent's HTTP status and error code. */
    private static final class ApiError extends RuntimeException {
        final int status;
        final int code;

        ApiError(int status, int code, String message) {
            super(message, null, false, false);
            this.status = status;
            this.code = code;
        }
    }
}
