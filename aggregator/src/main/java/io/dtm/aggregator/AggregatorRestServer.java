package io.dtm.aggregator;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import io.dtm.schemas.http.BoundedHttpServer;
import io.dtm.schemas.http.Health;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.Supplier;

/**
 * The aggregator's HTTP API (JSON):
 * <ul>
 *   <li>{@code GET /sweeps/{sweepId}/ranking[?round=R]}: a round's ranking, the latest round when {@code round} is
 *   absent ({@link RankingView});</li>
 *   <li>{@code GET /sweeps/{sweepId}/schedule}: every decided step and the cumulative schedule ({@link ScheduleView});</li>
 *   <li>{@code GET /health}: 200 UP, or 503 DOWN with the problems ({@link AggregatorHealth}).</li>
 * </ul>
 * Errors are {@code {"error": "..."}}: 400 for a bad request, 401 without the bearer token (when one is set; health
 * needs none), 404 for an unknown sweep or round, 413 for a body over the limit, 503 while the owner of a sweep cannot
 * be asked. Any instance answers any sweep: {@link SweepQueryService} forwards to the owner. The server's threads,
 * queue, read deadline and body size are bounded ({@link BoundedHttpServer}).
 */
public final class AggregatorRestServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(AggregatorRestServer.class);

    private final BoundedHttpServer server;
    /** The expected {@code Authorization} header, or null when the API is open. */
    private final byte[] authorization;
    private final ObjectMapper json = new ObjectMapper();

    private AggregatorRestServer(BoundedHttpServer server, String token) {
        this.server = server;
        this.authorization = token == null ? null : bearer(token).getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Binds the port without serving yet: the port (possibly chosen by the OS for port 0) must be known before Kafka
     * Streams starts, as it is advertised to the other instances as {@code application.server}.
     */
    public static AggregatorRestServer bind(InetSocketAddress address) throws IOException {
        return bind(address, BoundedHttpServer.Limits.defaults(), null);
    }

    /** @param token the bearer token every request but {@code /health} must carry; null: none */
    public static AggregatorRestServer bind(InetSocketAddress address, BoundedHttpServer.Limits limits, String token)
            throws IOException {
        return new AggregatorRestServer(BoundedHttpServer.bind(address, limits, "dtm-aggregator-http"), token);
    }

    /** The {@code Authorization} header value that carries {@code token}. */
    static String bearer(String token) {
        return "Bearer " + token;
    }

    public int port() {
        return server.port();
    }

    public void start(SweepQueryService queries, Supplier<Health> health) {
        server.route("/health", (exchange, body) -> {
            if (!"GET".equals(exchange.getRequestMethod())) {
                send(exchange, error(405, "only GET is supported"));
            } else {
                health.get().send(exchange);
            }
        });
        server.route("/sweeps/", (exchange, body) -> handle(exchange, () -> sweep(exchange, queries)));
        server.route("/", (exchange, body) -> handle(exchange, () -> error(404, "no such resource")));
        server.start();
        log.info("aggregator REST API listening on port {}{}", port(), authorization == null ? ""
                : " (bearer token required)");
    }

    @Override
    public void close() {
        server.close();
    }

    private record Response(int status, Object body) {}

    private static Response sweep(HttpExchange exchange, SweepQueryService queries) {
        String[] parts = exchange.getRequestURI().getRawPath().substring("/sweeps/".length()).split("/", -1);
        if (parts.length != 2 || parts[0].isEmpty()) {
            return error(404, "expected /sweeps/{sweepId}/ranking or /sweeps/{sweepId}/schedule");
        }
        String sweepId = URLDecoder.decode(parts[0], StandardCharsets.UTF_8);
        boolean forwarded = exchange.getRequestHeaders().containsKey(SweepQueryService.FORWARDED_HEADER);
        return switch (parts[1]) {
            case "ranking" -> {
                OptionalInt round = roundParameter(exchange.getRequestURI().getRawQuery());
                yield found(queries.ranking(sweepId, round, forwarded), "no ranking for sweep " + sweepId
                        + (round.isPresent() ? " round " + round.getAsInt() : ""));
            }
            case "schedule" -> found(queries.schedule(sweepId, forwarded), "unknown sweep " + sweepId);
            default -> error(404, "expected /sweeps/{sweepId}/ranking or /sweeps/{sweepId}/schedule");
        };
    }

    private static OptionalInt roundParameter(String query) {
        if (query == null || query.isEmpty()) {
            return OptionalInt.empty();
        }
        for (String pair : query.split("&")) {
            if (pair.startsWith("round=")) {
                String value = pair.substring("round=".length());
                try {
                    int round = Integer.parseInt(value);
                    if (round >= 0) {
                        return OptionalInt.of(round);
                    }
                } catch (NumberFormatException e) {
                    // reported below, with the offending value
                }
                throw new IllegalArgumentException("round must be a whole number >= 0, got '" + value + "'");
            }
        }
        return OptionalInt.empty();
    }

    private static Response found(Optional<?> body, String notFound) {
        return body.<Response>map(b -> new Response(200, b)).orElseGet(() -> error(404, notFound));
    }

    private static Response error(int status, String message) {
        return new Response(status, Map.of("error", message));
    }

    private void handle(HttpExchange exchange, Supplier<Response> route) throws IOException {
        Response response;
        try {
            response = !authorized(exchange) ? error(401, "this API needs the bearer token (Authorization: Bearer ...)")
                    : "GET".equals(exchange.getRequestMethod()) ? route.get() : error(405, "only GET is supported");
        } catch (IllegalArgumentException e) {
            response = error(400, e.getMessage());
        } catch (QueryUnavailableException e) {
            response = error(503, e.getMessage());
        } catch (RuntimeException e) {
            log.error("query {} failed", exchange.getRequestURI(), e);
            response = error(500, "internal error: " + e);
        }
        send(exchange, response);
    }

    private void send(HttpExchange exchange, Response response) throws IOException {
        if (response.status() == 401) {
            exchange.getResponseHeaders().set("WWW-Authenticate", "Bearer");
        }
        BoundedHttpServer.respond(exchange, response.status(), "application/json",
                json.writeValueAsBytes(response.body()));
    }

    private boolean authorized(HttpExchange exchange) {
        if (authorization == null) {
            return true;
        }
        String given = exchange.getRequestHeaders().getFirst("Authorization");
        // constant time, so the token cannot be guessed byte by byte from response times
        return given != null && MessageDigest.isEqual(authorization, given.getBytes(StandardCharsets.UTF_8));
    }
}
