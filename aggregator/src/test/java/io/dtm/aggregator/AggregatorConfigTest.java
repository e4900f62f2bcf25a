package io.dtm.aggregator;

import io.dtm.schemas.registry.SchemaRegistryCore;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.state.HostInfo;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AggregatorConfigTest {
    private final SchemaRegistryCore registry = new SchemaRegistryCore();

    @Test
    void streamsRunExactlyOnceAndAdvertiseTheRestAddress() {
        AggregatorApp.Config config = AggregatorApp.Config.builder("broker:9092", registry)
                .clientProps(Map.of("security.protocol", "SASL_SSL", StreamsConfig.PROCESSING_GUARANTEE_CONFIG, "at_least_once"))
                .replicationFactor(3).stateDir(Path.of("/var/lib/dtm")).commitIntervalMs(250).build();
        Properties props = AggregatorApp.streamsProperties(config, new HostInfo("agg-1", 7070));

        assertEquals(AggregatorApp.DEFAULT_APPLICATION_ID, props.get(StreamsConfig.APPLICATION_ID_CONFIG));
        assertEquals("broker:9092", props.get(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG));
        assertEquals(StreamsConfig.EXACTLY_ONCE_V2, props.get(StreamsConfig.PROCESSING_GUARANTEE_CONFIG),
                "extra client properties cannot weaken the guarantee");
        assertEquals("SASL_SSL", props.get("security.protocol"));
        assertEquals(3, props.get(StreamsConfig.REPLICATION_FACTOR_CONFIG));
        assertEquals("/var/lib/dtm", props.get(StreamsConfig.STATE_DIR_CONFIG));
        assertEquals(250L, props.get(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG));
        assertEquals("agg-1:7070", props.get(StreamsConfig.APPLICATION_SERVER_CONFIG));
    }

    @Test
    void invalidSettingsAreRejectedByName() {
        for (Runnable build : new Runnable[] {
                () -> AggregatorApp.Config.builder(" ", registry).build(),
                () -> AggregatorApp.Config.builder("b:9092", registry).replicationFactor(0).build(),
                () -> AggregatorApp.Config.builder("b:9092", registry).commitIntervalMs(0).build(),
                () -> AggregatorApp.Config.builder("b:9092", registry).streamThreads(0).build(),
                () -> AggregatorApp.Config.builder("b:9092", registry).httpPort(70000).build(),
                () -> AggregatorApp.Config.builder("b:9092", registry).unknownSweepGrace(Duration.ofSeconds(-1)).build()}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, build::run);
            assertTrue(e.getMessage().matches("^(bootstrapServers|replicationFactor|commitIntervalMs|streamThreads|httpPort"
                    + "|unknownSweepGrace) .*"), e.getMessage());
        }
    }
}
