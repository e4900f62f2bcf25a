package io.dtm.schemas.http;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a service's {@code GET /health} answers: UP (HTTP 200) when nothing is wrong, DOWN (503) with every problem
 * otherwise, and the state the service is in.
 */
public record Health(String state, List<String> problems) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public Health {
        problems = List.copyOf(problems);
    }

    public boolean up() {
        return problems.isEmpty();
    }

    public int httpStatus() {
        return up() ? 200 : 503;
    }

    /** {@code {"status": "UP"|"DOWN", "state": ..., "problems": [...]}} (no problems key while UP). */
    public Map<String, Object> json() {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("status", up() ? "UP" : "DOWN");
        body.put("state", state);
        if (!up()) {
            body.put("problems", problems);
        }
        return body;
    }

    /** Answers a health request with {@link #json()} and {@link #httpStatus()}. */
    public void send(HttpExchange exchange) throws IOException {
        BoundedHttpServer.respond(exchange, httpStatus(), "application/json", JSON.writeValueAsBytes(json()));
    }
}
