package io.dtm.aggregator;

import io.dtm.schemas.http.BoundedHttpServer;
import io.dtm.schemas.http.Health;
import org.apache.kafka.streams.state.HostInfo;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 8, items 5 and 7, on real ports: the aggregator's API with a bearer token (one instance forwarding to the
 * owner with it), slow clients that cannot hold it, and a body cap.
 */
class AggregatorRestSecurityTest {
    private static final String TOKEN = "0123456789abcdef-secret";
    private static final BoundedHttpServer.Limits LIMITS = new BoundedHttpServer.Limits(2, 8, Duration.ofSeconds(1),
            1024);

    private final HttpClient http = HttpClient.newHttpClient();
    private final AggregatorDriver agg = new AggregatorDriver();
    private final List<Socket> sockets = new ArrayList<>();
    private AggregatorRestServer owner;
    private AggregatorRestServer forwarder;

    @BeforeEach
    void start() throws IOException {
        owner = AggregatorRestServer.bind(new InetSocketAddress("127.0.0.1", 0), LIMITS, TOKEN);
        forwarder = AggregatorRestServer.bind(new InetSocketAddress("127.0.0.1", 0), LIMITS, TOKEN);
        HostInfo ownerHost = new HostInfo("127.0.0.1", owner.port());
        HostInfo forwarderHost = new HostInfo("127.0.0.1", forwarder.port());
        owner.start(new SweepQueryService(ownerHost, id -> Optional.of(ownerHost), agg.driver::getKeyValueStore, http,
                TOKEN), () -> new Health("RUNNING", List.of()));
        forwarder.start(new SweepQueryService(forwarderHost, id -> Optional.of(ownerHost), agg.driver::getKeyValueStore,
                http, TOKEN), () -> new Health("RUNNING", List.of("Kafka at x:9092 has not answered for 20 s")));
        agg.start(AggregatorDriver.sweep().build());
    }

    @AfterEach
    void stop() throws IOException {
        for (Socket s : sockets) {
            s.close();
        }
        owner.close();
        forwarder.close();
        agg.close();
    }

    @Test
    void everyQueryNeedsTheTokenAndInstancesForwardWithIt() throws Exception {
        assertEquals(401, get(owner, "/sweeps/s1/schedule", null).statusCode());
        HttpResponse<String> wrong = get(owner, "/sweeps/s1/schedule", "Bearer not-the-token");
        assertEquals(401, wrong.statusCode());
        assertEquals("Bearer", wrong.headers().firstValue("WWW-Authenticate").orElse(""));
        assertEquals(401, get(owner, "/nothing", null).statusCode(), "unknown paths reveal nothing either");

        HttpResponse<String> direct = get(owner, "/sweeps/s1/schedule", "Bearer " + TOKEN);
        assertEquals(200, direct.statusCode(), direct.body());
        HttpResponse<String> forwarded = get(forwarder, "/sweeps/s1/schedule", "Bearer " + TOKEN);
        assertEquals(200, forwarded.statusCode(), forwarded.body());
        assertEquals(direct.body(), forwarded.body(), "the forwarder's own request to the owner carried the token");

        // health is for probes and needs no token; it says DOWN with the reason
        assertEquals(200, get(owner, "/health", null).statusCode());
        HttpResponse<String> down = get(forwarder, "/health", null);
        assertEquals(503, down.statusCode());
        assertTrue(down.body().contains("\"status\":\"DOWN\"") && down.body().contains("has not answered"),
                down.body());
    }

    @Test
    void slowClientsAreCutOffAndOthersAreServed() throws Exception {
        for (int i = 0; i < 5; i++) {
            Socket slow = new Socket("127.0.0.1", owner.port());
            sockets.add(slow);
            OutputStream out = slow.getOutputStream();
            out.write("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a".getBytes(StandardCharsets.US_ASCII));
            out.flush();
        }
        long start = System.nanoTime();
        HttpResponse<String> health = http.send(HttpRequest.newBuilder(uri(owner, "/health"))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertEquals(200, health.statusCode());
        assertTrue(millis < 5_000, "health waited " + millis + " ms behind five silent clients");
    }

    @Test
    void aBodyOverTheCapIsRefused() throws Exception {
        HttpResponse<String> big = http.send(HttpRequest.newBuilder(uri(owner, "/sweeps/s1/schedule"))
                .header("Authorization", "Bearer " + TOKEN)
                .method("GET", HttpRequest.BodyPublishers.ofString("[" + "1,".repeat(5000) + "1]")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(413, big.statusCode(), big.body());
    }

    private HttpResponse<String> get(AggregatorRestServer server, String path, String authorization) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(uri(server, path));
        if (authorization != null) {
            request.header("Authorization", authorization);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static URI uri(AggregatorRestServer server, String path) {
        return URI.create("http://127.0.0.1:" + server.port() + path);
    }
}
