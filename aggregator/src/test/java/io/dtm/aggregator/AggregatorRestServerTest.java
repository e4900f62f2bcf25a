package io.dtm.aggregator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.http.Health;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.SweepRequest;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.state.HostInfo;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

import static io.dtm.aggregator.AggregatorTopologyTest.shards;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two REST servers on real ports: the owner answers from the topology's stores, the other instance owns nothing and
 * forwards every sweep query to the owner.
 */
class AggregatorRestServerTest {
    private final HttpClient http = HttpClient.newHttpClient();
    private final ObjectMapper json = new ObjectMapper();
    private final AggregatorDriver agg = new AggregatorDriver();
    private AggregatorRestServer owner;
    private AggregatorRestServer forwarder;
    private SweepQueryService forwarderQueries;
    private HostInfo ownerHost;

    @BeforeEach
    void startServers() throws IOException {
        owner = AggregatorRestServer.bind(new InetSocketAddress("127.0.0.1", 0));
        forwarder = AggregatorRestServer.bind(new InetSocketAddress("127.0.0.1", 0));
        ownerHost = new HostInfo("127.0.0.1", owner.port());
        HostInfo forwarderHost = new HostInfo("127.0.0.1", forwarder.port());
        owner.start(new SweepQueryService(ownerHost, sweepId -> Optional.of(ownerHost), agg.driver::getKeyValueStore, http),
                () -> new Health(KafkaStreams.State.RUNNING.name(), List.of()));
        forwarderQueries = new SweepQueryService(forwarderHost, sweepId -> Optional.of(ownerHost), new NoStores(), http);
        forwarder.start(forwarderQueries, () -> new Health(KafkaStreams.State.REBALANCING.name(), List.of()));
    }

    @AfterEach
    void stop() {
        owner.close();
        forwarder.close();
        agg.close();
    }

    @Test
    void healthReportsTheStreamsState() throws Exception {
        Reply reply = get(owner, "/health");
        assertEquals(200, reply.status());
        assertEquals("UP", reply.body().get("status").asText());
        assertEquals("RUNNING", reply.body().get("state").asText());
        assertEquals("REBALANCING", get(forwarder, "/health").body().get("state").asText());
    }

    @Test
    void anUnknownSweepIsA404OnEveryInstance() throws Exception {
        for (AggregatorRestServer server : List.of(owner, forwarder)) {
            Reply ranking = get(server, "/sweeps/nope/ranking");
            assertEquals(404, ranking.status());
            assertTrue(ranking.body().get("error").asText().contains("nope"));
            assertEquals(404, get(server, "/sweeps/nope/schedule").status());
        }
    }

    @Test
    void rankingAndScheduleAreServedByTheOwnerAndRelayedByTheOthers() throws Exception {
        SweepRequest sweep = AggregatorDriver.sweep().build();
        agg.start(sweep);
        assertEquals(0, get(forwarder, "/sweeps/s1/ranking").body().get("entries").size(), "a started round is empty");

        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.reportTrial(shards(round0, "a"), 8);
        agg.reportTrial(shards(round0, "b"), 4);
        agg.reportTrial(agg.trials.readValuesToList(), 7);

        Reply latest = get(forwarder, "/sweeps/s1/ranking");
        assertEquals(200, latest.status());
        assertEquals(1, latest.body().get("round").asInt(), "round 1 is the latest");
        assertEquals(2, latest.body().get("trialsTotal").asInt());
        assertEquals(0, latest.body().get("entries").size());

        Reply round0Reply = get(forwarder, "/sweeps/s1/ranking?round=0");
        assertEquals(200, round0Reply.status());
        assertTrue(round0Reply.body().get("decided").asBoolean());
        assertEquals("a", round0Reply.body().get("entries").get(0).get("component").asText());
        assertEquals(8.0, round0Reply.body().get("entries").get(0).get("fdtm").asDouble());
        assertEquals(json.readTree(get(owner, "/sweeps/s1/ranking?round=0").raw()), round0Reply.body(),
                "the forwarder relays the owner's answer");
        assertEquals(404, get(forwarder, "/sweeps/s1/ranking?round=5").status());

        Reply schedule = get(forwarder, "/sweeps/s1/schedule");
        assertEquals(200, schedule.status());
        assertEquals(1, schedule.body().get("currentRound").asInt());
        assertEquals(1, schedule.body().get("steps").size());
        assertEquals(7.0, schedule.body().get("steps").get(0).get("fdtm").asDouble());
        assertEquals("prune:0.5", schedule.body().get("schedule").get(0).get("compression").asText());
        assertFalse(schedule.body().get("finished").asBoolean());
    }

    @Test
    void inProcessQueriesGoThroughTheOwnerToo() {
        SweepRequest sweep = AggregatorDriver.sweep().build();
        agg.start(sweep);
        agg.reportTrial(shards(TrialPlanner.candidates(sweep, 0, List.of()), "b"), 6);

        RankingView ranking = forwarderQueries.ranking("s1", OptionalInt.empty()).orElseThrow();
        assertEquals(new RankingView("s1", 0, 2, 1, false, ranking.updatedAtMs(),
                List.of(new RankingView.Entry("b", "prune:0.5", 0.5, 8.0, 6.0, 0.25, 6.0, 6.0, 0.0, 4, true))), ranking);
        ScheduleView schedule = forwarderQueries.schedule("s1").orElseThrow();
        assertEquals(new ScheduleView("s1", 2, 0, List.of(), List.of(), false, ""), schedule);
        assertEquals(Optional.empty(), forwarderQueries.schedule("nope"));
    }

    @Test
    void badRequestsAreAnsweredWithJsonErrors() throws Exception {
        agg.start(AggregatorDriver.sweep().build());
        assertEquals(400, get(owner, "/sweeps/s1/ranking?round=-1").status());
        assertEquals(400, get(forwarder, "/sweeps/s1/ranking?round=x").status());
        assertEquals(404, get(owner, "/sweeps/s1/other").status());
        assertEquals(404, get(owner, "/nothing").status());
        HttpResponse<String> post = http.send(HttpRequest.newBuilder(uri(owner, "/sweeps/s1/schedule"))
                .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(405, post.statusCode());
    }

    @Test
    void aForwardedRequestIsNeverForwardedAgain() throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(uri(forwarder, "/sweeps/s1/schedule"))
                .header(SweepQueryService.FORWARDED_HEADER, "true").build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(503, response.statusCode());
        assertTrue(json.readTree(response.body()).get("error").asText().contains("owned by " + ownerHost.host()));
    }

    @Test
    void noOwnerDuringARebalanceIsA503() {
        SweepQueryService orphan = new SweepQueryService(ownerHost, sweepId -> Optional.empty(), new NoStores(), http);
        assertThrows(QueryUnavailableException.class, () -> orphan.schedule("s1"));
    }

    @Test
    void anUnreachableOwnerIsA503() throws Exception {
        int closedPort;
        try (java.net.ServerSocket socket = new java.net.ServerSocket(0)) {
            closedPort = socket.getLocalPort();
        }
        HostInfo gone = new HostInfo("127.0.0.1", closedPort);
        SweepQueryService queries = new SweepQueryService(new HostInfo("127.0.0.1", forwarder.port()),
                sweepId -> Optional.of(gone), new NoStores(), http);
        QueryUnavailableException e = assertThrows(QueryUnavailableException.class,
                () -> queries.ranking("s1", OptionalInt.of(0)));
        assertTrue(e.getMessage().contains("did not answer"), e.getMessage());
    }

    private record Reply(int status, String raw, JsonNode body) {}

    private Reply get(AggregatorRestServer server, String path) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(uri(server, path)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals("application/json", response.headers().firstValue("Content-Type").orElse(""));
        return new Reply(response.statusCode(), response.body(), json.readTree(response.body()));
    }

    private static URI uri(AggregatorRestServer server, String path) {
        return URI.create("http://127.0.0.1:" + server.port() + path);
    }

    /** The stores of an instance that owns nothing: reading them would be a routing bug. */
    private static final class NoStores implements SweepQueryService.StoreProvider {
        @Override
        public <V> ReadOnlyKeyValueStore<String, V> store(String name) {
            throw new AssertionError("a non-owner read its store " + name);
        }
    }
}
