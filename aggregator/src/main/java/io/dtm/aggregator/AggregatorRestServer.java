package io.dtm.aggregator;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.apache.kafka.streams.KafkaStreams;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * The aggregator's HTTP API (JSON):
 * <ul>
 *   <li>{@code GET /sweeps/{sweepId}/ranking[?round=R]}: a round's ranking, the latest round when {@code round} is
 *   absent ({@link RankingView});</li>
 *   <li>{@code GET /sweeps/{sweepId}/schedule}: every decided step and the cumulative schedule ({@link ScheduleView});</li>
 *   <li>{@code GET /health}: 200 while Kafka Streams runs or rebalances, 503 otherwise.</li>
 * </ul>
 * Errors are {@code {"error": "..."}}: 400 for a bad request, 404 for an unknown sweep or round, 503 while the owner
 * of a sweep cannot be asked. Any instance answers any sweep: {@link SweepQueryService} forwards to the owner.
 */
public final class AggregatorRestServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(AggregatorRestServer.class);

    /** Forwarded requests wait on another instance; a few threads keep one slow owner from blocking health checks. */
    private static final int THREADS = 4;

    private final HttpServer server;
    private final ExecutorService executor = Executors.newFixedThreadPool(THREADS, r -> {
        Thread t = new Thread(r, "dtm-aggregator-http");
        t.setDaemon(true);
        return t;
    });
    private final ObjectMapper json = new ObjectMapper();

    private AggregatorRestServer(HttpServer server) {
        this.server = server;
    }

    /**
     * Binds the port without serving yet: the port (possibly chosen by the OS for port 0) must be known before Kafka
     * Streams starts, as it is advertised to the other instances as {@code application.server}.
     */
    public static AggregatorRestServer bind(InetSocketAddress address) throws IOException {
        return new AggregatorRestServer(HttpServer.create(address, 0));
    }

    public int port() {
        return server.getAddress().getPort();
    }

    public void start(SweepQueryService queries, Supplier<KafkaStreams.State> state) {
        server.createContext("/health", exchange -> handle(exchange, () -> health(state.get())));
        server.createContext("/sweeps/", exchange -> handle(exchange, () -> sweep(exchange, queries)));
        server.createContext("/", exchange -> handle(exchange, () -> error(404, "no such resource")));
        server.setExecutor(executor);
        server.start();
        log.info("aggregator REST API listening on port {}", port());
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }

    private record Response(int status, Object body) {}

    private static Response health(KafkaStreams.State state) {
        boolean up = state.isRunningOrRebalancing();
        return new Response(up ? 200 : 503, Map.of("status", up ? "UP" : "DOWN", "state", state.name()));
    }

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
            response = "GET".equals(exchange.getRequestMethod()) ? route.get() : error(405, "only GET is supported");
        } catch (IllegalArgumentException e) {
            response = error(400, e.getMessage());
        } catch (QueryUnavailableException e) {
            response = error(503, e.getMessage());
        } catch (RuntimeException e) {
            log.error("query {} failed", exchange.getRequestURI(), e);
            response = error(500, "internal error: " + e);
        }
        byte[] body = json.writeValueAsBytes(response.body());
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(response.status(), body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }
}
