package io.dtm.aggregator;

import io.dtm.schemas.BrokerWatch;
import io.dtm.schemas.http.BoundedHttpServer;
import io.dtm.schemas.http.Health;
import io.dtm.schemas.registry.SchemaRegistryClient;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.state.HostInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;

/**
 * Runs the aggregator: Kafka Streams over {@link AggregatorTopology} with exactly-once processing, and the REST API of
 * {@link AggregatorRestServer}. Several instances with the same application id share the work; each advertises its REST
 * address so the others can forward queries to it.
 *
 * <pre>{@code
 * try (AggregatorApp app = AggregatorApp.start(AggregatorApp.Config.builder("localhost:9092", registry)
 *         .httpPort(7070).build())) {
 *     app.queries().schedule("sweep-1");   // or GET http://localhost:7070/sweeps/sweep-1/schedule
 * }
 * }</pre>
 *
 * <p>The pipeline's topics ({@code Topics.ALL}) must exist; Kafka Streams creates only its internal topics.
 */
public final class AggregatorApp implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(AggregatorApp.class);

    public static final String DEFAULT_APPLICATION_ID = "dtm-aggregator";
    private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(30);

    /** How to run one aggregator instance; {@link #builder} has the defaults. */
    public record Config(String bootstrapServers, SchemaRegistryClient registry, String applicationId,
                         Map<String, Object> clientProps, int replicationFactor, Path stateDir, long commitIntervalMs,
                         int streamThreads, Duration unknownSweepGrace, String httpBindHost, String httpAdvertisedHost,
                         int httpPort, String httpToken) {

        public Config {
            if (bootstrapServers == null || bootstrapServers.isBlank()) {
                throw new IllegalArgumentException("bootstrapServers is required");
            }
            Objects.requireNonNull(registry, "registry");
            if (applicationId == null || applicationId.isBlank()) {
                throw new IllegalArgumentException("applicationId is required");
            }
            clientProps = Map.copyOf(clientProps);
            if (replicationFactor < 1) {
                throw new IllegalArgumentException("replicationFactor must be >= 1, got " + replicationFactor);
            }
            if (commitIntervalMs < 1) {
                throw new IllegalArgumentException("commitIntervalMs must be >= 1, got " + commitIntervalMs);
            }
            if (streamThreads < 1) {
                throw new IllegalArgumentException("streamThreads must be >= 1, got " + streamThreads);
            }
            if (unknownSweepGrace == null || unknownSweepGrace.isNegative()) {
                throw new IllegalArgumentException("unknownSweepGrace must be >= 0, got " + unknownSweepGrace);
            }
            if (httpPort < 0 || httpPort > 65535) {
                throw new IllegalArgumentException("httpPort must be within 0..65535 (0 picks a free port), got " + httpPort);
            }
            Objects.requireNonNull(httpBindHost, "httpBindHost");
            Objects.requireNonNull(httpAdvertisedHost, "httpAdvertisedHost");
            if (httpToken != null && (httpToken.length() < 16 || !httpToken.strip().equals(httpToken))) {
                throw new IllegalArgumentException("httpToken must be at least 16 characters without surrounding"
                        + " whitespace");
            }
        }

        /** Every Kafka client setting: the extra properties with the bootstrap servers. */
        Map<String, Object> kafkaProps() {
            Map<String, Object> props = new java.util.HashMap<>(clientProps);
            props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
            return props;
        }

        public static Builder builder(String bootstrapServers, SchemaRegistryClient registry) {
            return new Builder(bootstrapServers, registry);
        }
    }

    /**
     * Defaults: application id {@value #DEFAULT_APPLICATION_ID}, no extra client properties, replication factor 1 (a
     * single broker), Kafka Streams' default state directory, 100 ms commits, one stream thread, 5 minutes' grace for
     * results of a sweep not seen yet, REST on a free port of 127.0.0.1 only (bind another address to serve other
     * hosts), advertised as {@code localhost}, no bearer token.
     */
    public static final class Builder {
        private final String bootstrapServers;
        private final SchemaRegistryClient registry;
        private String applicationId = DEFAULT_APPLICATION_ID;
        private Map<String, Object> clientProps = Map.of();
        private int replicationFactor = 1;
        private Path stateDir;
        private long commitIntervalMs = 100;
        private int streamThreads = 1;
        private Duration unknownSweepGrace = AggregatorTopology.DEFAULT_UNKNOWN_SWEEP_GRACE;
        private String httpBindHost = "127.0.0.1";
        private String httpAdvertisedHost = "localhost";
        private int httpPort;
        private String httpToken;

        private Builder(String bootstrapServers, SchemaRegistryClient registry) {
            this.bootstrapServers = bootstrapServers;
            this.registry = registry;
        }

        public Builder applicationId(String applicationId) {
            this.applicationId = applicationId;
            return this;
        }

        /** Extra settings for every Kafka client (SASL, TLS), e.g. from {@code ClientProperties.load}. */
        public Builder clientProps(Map<String, Object> clientProps) {
            this.clientProps = clientProps;
            return this;
        }

        /** Replication of the internal changelog and repartition topics. */
        public Builder replicationFactor(int replicationFactor) {
            this.replicationFactor = replicationFactor;
            return this;
        }

        public Builder stateDir(Path stateDir) {
            this.stateDir = stateDir;
            return this;
        }

        public Builder commitIntervalMs(long commitIntervalMs) {
            this.commitIntervalMs = commitIntervalMs;
            return this;
        }

        public Builder streamThreads(int streamThreads) {
            this.streamThreads = streamThreads;
            return this;
        }

        /** How long a result naming a sweep not seen yet waits for the sweep before it is dead-lettered. */
        public Builder unknownSweepGrace(Duration unknownSweepGrace) {
            this.unknownSweepGrace = unknownSweepGrace;
            return this;
        }

        /** The REST API's port; 0 picks a free one ({@link AggregatorApp#restAddress()} tells which). */
        public Builder httpPort(int httpPort) {
            this.httpPort = httpPort;
            return this;
        }

        public Builder httpBindHost(String httpBindHost) {
            this.httpBindHost = httpBindHost;
            return this;
        }

        /** The host name other instances reach this one's REST API at. */
        public Builder httpAdvertisedHost(String httpAdvertisedHost) {
            this.httpAdvertisedHost = httpAdvertisedHost;
            return this;
        }

        /**
         * The bearer token every REST request but {@code /health} must carry, and that this instance sends when it
         * forwards a query (all instances share it); null: the API is open.
         */
        public Builder httpToken(String httpToken) {
            this.httpToken = httpToken;
            return this;
        }

        public Config build() {
            return new Config(bootstrapServers, registry, applicationId, clientProps, replicationFactor, stateDir,
                    commitIntervalMs, streamThreads, unknownSweepGrace, httpBindHost, httpAdvertisedHost, httpPort,
                    httpToken);
        }
    }

    private final KafkaStreams streams;
    private final AggregatorRestServer rest;
    private final SweepQueryService queries;
    private final HostInfo restAddress;
    private final BrokerWatch broker;
    private final AggregatorHealth health;

    private AggregatorApp(KafkaStreams streams, AggregatorRestServer rest, SweepQueryService queries, HostInfo restAddress,
                          BrokerWatch broker, AggregatorHealth health) {
        this.streams = streams;
        this.rest = rest;
        this.queries = queries;
        this.restAddress = restAddress;
        this.broker = broker;
        this.health = health;
    }

    /**
     * The Kafka Streams settings of an instance advertising {@code restAddress}. The extra client properties go in
     * first, so they can add security settings but never turn off exactly-once processing.
     */
    public static Properties streamsProperties(Config config, HostInfo restAddress) {
        Properties props = new Properties();
        props.putAll(config.clientProps());
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, config.applicationId());
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrapServers());
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, config.replicationFactor());
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, config.commitIntervalMs());
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, config.streamThreads());
        props.put(StreamsConfig.APPLICATION_SERVER_CONFIG, restAddress.host() + ":" + restAddress.port());
        if (config.stateDir() != null) {
            props.put(StreamsConfig.STATE_DIR_CONFIG, config.stateDir().toString());
        }
        return props;
    }

    /** Binds the REST port, starts Kafka Streams, then serves queries. */
    public static AggregatorApp start(Config config) throws IOException {
        AggregatorRestServer rest = AggregatorRestServer.bind(new InetSocketAddress(config.httpBindHost(),
                config.httpPort()), BoundedHttpServer.Limits.defaults(), config.httpToken());
        HostInfo self = new HostInfo(config.httpAdvertisedHost(), rest.port());
        KafkaStreams streams = null;
        BrokerWatch broker = null;
        try {
            streams = new KafkaStreams(AggregatorTopology.buildTopology(config.registry(), config.unknownSweepGrace()), streamsProperties(config, self));
            broker = BrokerWatch.start(config.kafkaProps(), BrokerWatch.DEFAULT_INTERVAL);
            AggregatorHealth health = new AggregatorHealth(streams::state, broker::problem);
            streams.setStateListener((now, before) -> log.info("aggregator state {} -> {}", before, now));
            streams.setUncaughtExceptionHandler(e -> {
                // EOS aborts the failed transaction, so a replaced thread resumes from the last commit; transient
                // causes (an unreachable schema registry) heal that way instead of stopping the aggregator. One that
                // keeps failing turns health DOWN.
                log.error("aggregator stream thread failed; replacing it", e);
                health.threadFailed(e);
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
            });
            SweepQueryService queries = SweepQueryService.forStreams(streams, self, config.httpToken());
            streams.start();
            rest.start(queries, health::health);
            log.info("aggregator {} started; REST API at {}:{}", config.applicationId(), self.host(), self.port());
            return new AggregatorApp(streams, rest, queries, self, broker, health);
        } catch (RuntimeException e) {
            rest.close();
            if (broker != null) {
                broker.close();
            }
            if (streams != null) {
                streams.close(CLOSE_TIMEOUT);
            }
            throw e;
        }
    }

    /** Ranking and schedule queries for any sweep, answered here or by the owning instance. */
    public SweepQueryService queries() {
        return queries;
    }

    /** Where this instance's REST API is reachable, as advertised to the other instances. */
    public HostInfo restAddress() {
        return restAddress;
    }

    public KafkaStreams.State state() {
        return streams.state();
    }

    /** What {@code GET /health} answers. */
    public Health health() {
        return health.health();
    }

    @Override
    public void close() {
        rest.close();
        broker.close();
        streams.close(CLOSE_TIMEOUT);
    }
}
