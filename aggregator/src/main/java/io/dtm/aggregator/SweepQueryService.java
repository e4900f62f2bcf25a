package io.dtm.aggregator;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.aggregator.avro.RoundState;
import io.dtm.planner.Allocations;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyQueryMetadata;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.errors.StreamsException;
import org.apache.kafka.streams.state.HostInfo;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.Supplier;

/**
 * Reads a sweep's ranking and schedule wherever they live: from this instance's stores when it owns the sweep,
 * otherwise by asking the owner's REST API. The REST layer uses it, and so can anything in-process (the CLI's live
 * progress), without knowing which instance owns what.
 */
public final class SweepQueryService {
    /** Marks a request that another instance forwarded: the receiver answers it from its own stores or not at all. */
    static final String FORWARDED_HEADER = "X-Dtm-Forwarded";

    private static final Duration REMOTE_TIMEOUT = Duration.ofSeconds(10);

    /** Read access to this instance's stores by name. */
    @FunctionalInterface
    public interface StoreProvider {
        <V> ReadOnlyKeyValueStore<String, V> store(String name);
    }

    /** The instance that owns a sweep's state, or empty while ownership is being moved. */
    @FunctionalInterface
    public interface OwnerLocator {
        Optional<HostInfo> ownerOf(String sweepId);
    }

    private final HostInfo self;
    private final OwnerLocator owners;
    private final StoreProvider stores;
    private final HttpClient http;
    /** The bearer token the instances' APIs require, or null. */
    private final String token;
    private final ObjectMapper json = new ObjectMapper();

    public SweepQueryService(HostInfo self, OwnerLocator owners, StoreProvider stores, HttpClient http) {
        this(self, owners, stores, http, null);
    }

    /** @param token the bearer token the other instances' APIs require (they share one); null: none */
    public SweepQueryService(HostInfo self, OwnerLocator owners, StoreProvider stores, HttpClient http, String token) {
        this.self = self;
        this.owners = owners;
        this.stores = stores;
        this.http = http;
        this.token = token;
    }

    /**
     * Queries through a running {@link KafkaStreams}. Every store is partitioned by sweep id, so the owner of any of a
     * sweep's keys is found by looking the sweep id itself up.
     */
    public static SweepQueryService forStreams(KafkaStreams streams, HostInfo self, String token) {
        StringSerializer keys = new StringSerializer();
        OwnerLocator owners = sweepId -> {
            try {
                KeyQueryMetadata metadata = streams.queryMetadataForKey(AggregatorTopology.RANKING_STORE, sweepId, keys);
                return metadata == null || KeyQueryMetadata.NOT_AVAILABLE.equals(metadata)
                        ? Optional.empty() : Optional.of(metadata.activeHost());
            } catch (StreamsException | IllegalStateException e) {
                return Optional.empty();
            }
        };
        StoreProvider stores = new StoreProvider() {
            @Override
            public <V> ReadOnlyKeyValueStore<String, V> store(String name) {
                return streams.store(StoreQueryParameters.fromNameAndType(name, QueryableStoreTypes.keyValueStore()));
            }
        };
        return new SweepQueryService(self, owners, stores,
                HttpClient.newBuilder().connectTimeout(REMOTE_TIMEOUT).build(), token);
    }

    /**
     * The ranking of {@code round}, or of the latest round when absent; empty when the sweep is unknown or the round
     * has not started. A started round without results yet has an empty ranking.
     *
     * @throws QueryUnavailableException when the owner cannot be found or asked right now
     */
    public Optional<RankingView> ranking(String sweepId, OptionalInt round) {
        return ranking(sweepId, round, false);
    }

    /**
     * Every decided step of the sweep and its cumulative schedule; empty when the sweep is unknown.
     *
     * @throws QueryUnavailableException when the owner cannot be found or asked right now
     */
    public Optional<ScheduleView> schedule(String sweepId) {
        return schedule(sweepId, false);
    }

    Optional<RankingView> ranking(String sweepId, OptionalInt round, boolean forwarded) {
        String path = "/sweeps/" + encode(sweepId) + "/ranking" + (round.isPresent() ? "?round=" + round.getAsInt() : "");
        return route(sweepId, forwarded, () -> localRanking(sweepId, round), path, RankingView.class);
    }

    Optional<ScheduleView> schedule(String sweepId, boolean forwarded) {
        return route(sweepId, forwarded, () -> localSchedule(sweepId), "/sweeps/" + encode(sweepId) + "/schedule",
                ScheduleView.class);
    }

    private <T> Optional<T> route(String sweepId, boolean forwarded, Supplier<Optional<T>> local, String path,
                                  Class<T> type) {
        HostInfo owner = owners.ownerOf(sweepId).orElseThrow(() ->
                new QueryUnavailableException("no instance owns sweep " + sweepId + " right now (rebalancing?)"));
        if (owner.equals(self)) {
            try {
                return local.get();
            } catch (InvalidStateStoreException e) {
                throw new QueryUnavailableException("the stores of sweep " + sweepId + " are not queryable right now", e);
            }
        }
        if (forwarded) {
            // Ownership moved between the forwarder's lookup and ours; forwarding again could loop.
            throw new QueryUnavailableException("sweep " + sweepId + " is owned by " + address(owner) + ", not here");
        }
        return remote(owner, path, type);
    }

    private Optional<RankingView> localRanking(String sweepId, OptionalInt round) {
        ReadOnlyKeyValueStore<String, SweepRequest> sweeps = stores.store(AggregatorTopology.SWEEP_STORE);
        if (sweeps.get(sweepId) == null) {
            return Optional.empty();
        }
        ReadOnlyKeyValueStore<String, RoundState> rounds = stores.store(AggregatorTopology.ROUND_STORE);
        int roundNo = round.orElseGet(() -> latestRound(rounds, sweepId));
        String key = Topics.roundKey(sweepId, roundNo);
        RankingUpdate ranking = stores.<RankingUpdate>store(AggregatorTopology.RANKING_STORE).get(key);
        if (ranking != null) {
            return Optional.of(RankingView.of(ranking));
        }
        RoundState state = rounds.get(key);
        return state == null ? Optional.empty() : Optional.of(new RankingView(sweepId, roundNo,
                state.getCandidates().size(), 0, state.getDecided(), 0, List.of()));
    }

    private Optional<ScheduleView> localSchedule(String sweepId) {
        SweepRequest sweep = stores.<SweepRequest>store(AggregatorTopology.SWEEP_STORE).get(sweepId);
        if (sweep == null) {
            return Optional.empty();
        }
        List<ScheduleStep> steps = bySweep(stores.<ScheduleStep>store(AggregatorTopology.STEP_STORE), sweepId).stream()
                .sorted(Comparator.comparingInt(ScheduleStep::getRound)).toList();
        ScheduleStep last = steps.isEmpty() ? null : steps.get(steps.size() - 1);
        return Optional.of(new ScheduleView(sweepId,
                Allocations.isTarget(sweep) ? sweep.getAllocation().getIterations() : sweep.getRounds(),
                latestRound(stores.<RoundState>store(AggregatorTopology.ROUND_STORE), sweepId),
                steps.stream().map(ScheduleView.Step::of).toList(),
                last == null ? List.of() : ScheduleView.Entry.of(last.getSchedule()),
                last != null && last.getLast(), last == null ? "" : last.getStopReason(),
                last == null ? "" : last.getFailure(),
                last == null ? List.of() : last.getBaselines().stream().map(ScheduleView.Baseline::of).toList()));
    }

    private <T> Optional<T> remote(HostInfo owner, String path, Class<T> type) {
        URI uri = URI.create("http://" + address(owner) + path);
        HttpRequest.Builder request = HttpRequest.newBuilder(uri).timeout(REMOTE_TIMEOUT).header(FORWARDED_HEADER, "true")
                .GET();
        if (token != null) {
            request.header("Authorization", AggregatorRestServer.bearer(token));
        }
        HttpResponse<String> response;
        try {
            response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new QueryUnavailableException("owner " + address(owner) + " did not answer " + path + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new QueryUnavailableException("interrupted while asking " + address(owner), e);
        }
        try {
            return switch (response.statusCode()) {
                case 200 -> Optional.of(json.readValue(response.body(), type));
                case 404 -> Optional.empty();
                default -> throw new QueryUnavailableException("owner " + address(owner) + " answered " + path + " with "
                        + response.statusCode() + ": " + response.body());
            };
        } catch (IOException e) {
            throw new QueryUnavailableException("owner " + address(owner) + " sent an unreadable answer to " + path, e);
        }
    }

    /** The highest round the sweep has started (0 before any). */
    static int latestRound(ReadOnlyKeyValueStore<String, RoundState> rounds, String sweepId) {
        int latest = 0;
        try (KeyValueIterator<String, RoundState> it = rounds.prefixScan(sweepId + "/", new StringSerializer())) {
            while (it.hasNext()) {
                String key = it.next().key;
                latest = Math.max(latest, Integer.parseInt(key.substring(key.lastIndexOf('/') + 1)));
            }
        }
        return latest;
    }

    private static <V> List<V> bySweep(ReadOnlyKeyValueStore<String, V> store, String sweepId) {
        List<V> values = new ArrayList<>();
        try (KeyValueIterator<String, V> it = store.prefixScan(sweepId + "/", new StringSerializer())) {
            it.forEachRemaining(kv -> values.add(kv.value));
        }
        return values;
    }

    private static String address(HostInfo host) {
        return host.host() + ":" + host.port();
    }

    private static String encode(String sweepId) {
        return URLEncoder.encode(sweepId, StandardCharsets.UTF_8);
    }
}
