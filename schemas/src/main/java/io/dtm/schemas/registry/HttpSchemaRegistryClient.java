package io.dtm.schemas.registry;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.Schema;

/**
 * A client of any registry that speaks Confluent's REST API: Confluent's own, or {@link KafkaSchemaRegistryServer}.
 * Schemas are immutable once registered, so ids and schemas are cached for the client's lifetime; subject listings
 * and "latest" always ask the registry.
 */
public final class HttpSchemaRegistryClient implements SchemaRegistryClient {

    /** Confluent's media type for requests and answers. */
    public static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

    /** Confluent's code for an unknown subject; the interface answers "nothing registered" instead of failing. */
    static final int SUBJECT_NOT_FOUND = 40401;

    private static final String ACCEPT =
            CONTENT_TYPE + ", application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);
    private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(30);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String baseUrl;
    private final HttpClient http;
    /** The Authorization header's value, or null. */
    private final String authorization;
    private final Map<Integer, Schema> schemasById = new ConcurrentHashMap<>();
    private final Map<String, Map<String, Integer>> idsBySubject = new ConcurrentHashMap<>();

    /** @param baseUrl e.g. {@code http://127.0.0.1:8081}; a trailing slash is ignored */
    public HttpSchemaRegistryClient(String baseUrl) {
        this(baseUrl, RegistryClientSettings.NONE);
    }

    /** A client that authenticates and trusts as {@code settings} say. */
    public HttpSchemaRegistryClient(String baseUrl, RegistryClientSettings settings) {
        this.baseUrl = normalize(baseUrl);
        HttpClient.Builder builder = HttpClient.newBuilder().connectTimeout(CONNECT_TIMEOUT);
        if (settings.sslContext() != null) {
            builder.sslContext(settings.sslContext());
        }
        this.http = builder.build();
        this.authorization = settings.userInfo() == null ? null : "Basic " + Base64.getEncoder()
                .encodeToString(settings.userInfo().getBytes(StandardCharsets.UTF_8));
    }

    public String baseUrl() {
        return baseUrl;
    }

    @Override
    public int register(String subject, Schema schema) {
        String text = SchemaText.of(Objects.requireNonNull(schema, "schema"));
        Map<String, Integer> ids = idsBySubject.computeIfAbsent(requireSubject(subject), s -> new ConcurrentHashMap<>());
        Integer cached = ids.get(text);
        if (cached != null) {
            return cached;
        }
        JsonNode answer = call("POST", "/subjects/" + encode(subject) + "/versions", schemaBody(text), subject);
        int id = requiredInt(answer, "id", "POST /subjects/" + subject + "/versions");
        ids.put(text, id);
        schemasById.putIfAbsent(id, schema);
        return id;
    }

    @Override
    public Schema getById(int id) {
        Schema cached = schemasById.get(id);
        if (cached != null) {
            return cached;
        }
        JsonNode answer;
        try {
            answer = call("GET", "/schemas/ids/" + id, null, null);
        } catch (SchemaRegistryException e) {
            if (e.errorCode() == SchemaNotFoundException.ERROR_CODE) {
                throw new SchemaNotFoundException(id, e);
            }
            throw e;
        }
        Schema schema = SchemaText.parse(requiredText(answer, "schema", "GET /schemas/ids/" + id));
        Schema raced = schemasById.putIfAbsent(id, schema);
        return raced != null ? raced : schema;
    }

    @Override
    public Optional<RegisteredSchema> latest(String subject) {
        JsonNode answer;
        try {
            answer = call("GET", "/subjects/" + encode(requireSubject(subject)) + "/versions/latest", null, subject);
        } catch (SchemaRegistryException e) {
            if (e.errorCode() == SUBJECT_NOT_FOUND) {
                return Optional.empty();
            }
            throw e;
        }
        String what = "GET /subjects/" + subject + "/versions/latest";
        int id = requiredInt(answer, "id", what);
        Schema schema = schemasById.computeIfAbsent(id, i -> SchemaText.parse(requiredText(answer, "schema", what)));
        return Optional.of(new RegisteredSchema(subject, requiredInt(answer, "version", what), id, schema));
    }

    @Override
    public List<Integer> versions(String subject) {
        JsonNode answer;
        try {
            answer = call("GET", "/subjects/" + encode(requireSubject(subject)) + "/versions", null, subject);
        } catch (SchemaRegistryException e) {
            if (e.errorCode() == SUBJECT_NOT_FOUND) {
                return List.of();
            }
            throw e;
        }
        List<Integer> versions = new ArrayList<>();
        requireArray(answer, "GET /subjects/" + subject + "/versions").forEach(v -> versions.add(v.asInt()));
        return List.copyOf(versions);
    }

    @Override
    public boolean testCompatibility(String subject, Schema schema) {
        String path = "/compatibility/subjects/" + encode(requireSubject(subject)) + "/versions/latest";
        JsonNode answer;
        try {
            answer = call("POST", path, schemaBody(SchemaText.of(schema)), subject);
        } catch (SchemaRegistryException e) {
            // Older Confluent registries answer 40401 for a subject without versions; anything is compatible with it.
            if (e.errorCode() == SUBJECT_NOT_FOUND) {
                return true;
            }
            throw e;
        }
        JsonNode compatible = answer.get("is_compatible");
        if (compatible == null || !compatible.isBoolean()) {
            throw malformed("POST " + path, "is_compatible", answer);
        }
        return compatible.booleanValue();
    }

    @Override
    public List<String> subjects() {
        List<String> subjects = new ArrayList<>();
        requireArray(call("GET", "/subjects", null, null), "GET /subjects").forEach(s -> subjects.add(s.asText()));
        subjects.sort(null);
        return List.copyOf(subjects);
    }

    /**
     * Sends one request and returns the JSON answer, or throws the registry's error as an exception: 409 as
     * {@link IncompatibleSchemaException}, 42201 as {@link InvalidSchemaException}, anything else as
     * {@link SchemaRegistryException} carrying Confluent's {@code error_code}.
     */
    private JsonNode call(String method, String path, String body, String subject) {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(REQUEST_TIMEOUT)
                .header("Accept", ACCEPT);
        if (authorization != null) {
            request.header("Authorization", authorization);
        }
        if (body != null) {
            request.header("Content-Type", CONTENT_TYPE);
        }
        request.method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
        HttpResponse<String> response;
        try {
            response = http.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new SchemaRegistryException(SchemaRegistryException.NO_RESPONSE,
                    "cannot reach schema registry at " + baseUrl + " (" + method + " " + path + "): " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SchemaRegistryException(SchemaRegistryException.NO_RESPONSE,
                    "interrupted while calling schema registry at " + baseUrl + " (" + method + " " + path + ")", e);
        }
        JsonNode json = parseOrNull(response.body());
        if (response.statusCode() / 100 == 2) {
            if (json == null) {
                throw new SchemaRegistryException(response.statusCode(), "schema registry at " + baseUrl
                        + " answered " + method + " " + path + " with a body that is not JSON: "
                        + abbreviate(response.body()));
            }
            return json;
        }
        int code = json != null && json.path("error_code").isInt() ? json.get("error_code").intValue()
                : response.statusCode();
        String message = json != null && json.path("message").isTextual() ? json.get("message").textValue()
                : abbreviate(response.body());
        if (code == IncompatibleSchemaException.ERROR_CODE) {
            throw new IncompatibleSchemaException(subject, message);
        }
        String described = "schema registry at " + baseUrl + " refused " + method + " " + path + " with HTTP "
                + response.statusCode() + " (error_code " + code + "): " + message;
        if (code == InvalidSchemaException.ERROR_CODE) {
            throw new InvalidSchemaException(described, null);
        }
        throw new SchemaRegistryException(code, described);
    }

    private static String schemaBody(String schemaText) {
        try {
            return JSON.writeValueAsString(Map.of("schema", schemaText));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write a JSON string", e);
        }
    }

    private static JsonNode parseOrNull(String body) {
        if (body == null || body.isBlank()) {
            return null;
        }
        try {
            return JSON.readTree(body);
        } catch (JsonProcessingException e) {
            return null;
        }
    }

    private SchemaRegistryException malformed(String what, String field, JsonNode answer) {
        return new SchemaRegistryException(SchemaRegistryException.NO_RESPONSE, "schema registry at " + baseUrl
                + " answered " + what + " without a valid '" + field + "': " + abbreviate(answer.toString()));
    }

    private int requiredInt(JsonNode answer, String field, String what) {
        JsonNode value = answer.get(field);
        if (value == null || !value.isInt()) {
            throw malformed(what, field, answer);
        }
        return value.intValue();
    }

    private String requiredText(JsonNode answer, String field, String what) {
        JsonNode value = answer.get(field);
        if (value == null || !value.isTextual()) {
            throw malformed(what, field, answer);
        }
        return value.textValue();
    }

    private JsonNode requireArray(JsonNode answer, String what) {
        if (!answer.isArray()) {
            throw malformed(what, "[...]", answer);
        }
        return answer;
    }

    private static String requireSubject(String subject) {
        if (subject == null || subject.isBlank()) {
            throw new IllegalArgumentException("subject is required");
        }
        return subject;
    }

    /** Subjects are free text; path segments are not (and URLEncoder writes a space as '+', which a path keeps). */
    private static String encode(String subject) {
        return URLEncoder.encode(subject, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private static String abbreviate(String text) {
        if (text == null) {
            return "";
        }
        return text.length() <= 300 ? text : text.substring(0, 300) + "...";
    }

    static String normalize(String baseUrl) {
        if (baseUrl == null || baseUrl.isBlank()) {
            throw new IllegalArgumentException("schema registry URL is required");
        }
        String url = baseUrl.trim();
        while (url.endsWith("/")) {
            url = url.substring(0, url.length() - 1);
        }
        URI uri;
        try {
            uri = URI.create(url);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("invalid schema registry URL '" + baseUrl + "': " + e.getMessage(), e);
        }
        if (!("http".equalsIgnoreCase(uri.getScheme()) || "https".equalsIgnoreCase(uri.getScheme()))
                || uri.getHost() == null) {
            throw new IllegalArgumentException("invalid schema registry URL '" + baseUrl
                    + "': expected http://host:port or https://host:port");
        }
        return url;
    }

    @Override
    public String toString() {
        return "HttpSchemaRegistryClient[" + baseUrl + "]";
    }
}
