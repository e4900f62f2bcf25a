package io.dtm.cli;

import io.dtm.aggregator.AggregatorApp;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "aggregator", mixinStandardHelpOptions = true, description = "Run the Kafka Streams aggregator (rankings, rounds, schedule) and its HTTP queries.")
final class AggregatorCommand implements Callable<Integer> {

    @Mixin
    ConnectionMixin connection;

    @Option(names = "--http-port", defaultValue = "7070", description = "Port of the query API (default: ${DEFAULT-VALUE}).")
    int httpPort;

    @Option(names = "--advertised-host", defaultValue = "127.0.0.1",
            description = "Host other instances use to forward queries here (default: ${DEFAULT-VALUE}).")
    String advertisedHost;

    @Option(names = "--bind-host", defaultValue = "127.0.0.1", description = "Address the query API binds (default: ${DEFAULT-VALUE}).")
    String bindHost;

    @Option(names = "--replication-factor", defaultValue = "1", description = "Of internal topics (default: ${DEFAULT-VALUE}).")
    int replicationFactor;

    @Option(names = "--state-dir", description = "Kafka Streams state directory.")
    Path stateDir;

    @Option(names = "--http-token-file", defaultValue = "${env:DTM_HTTP_TOKEN_FILE}",
            description = "A file holding the bearer token (16+ characters) every query but /health must carry; "
                    + "all instances share it (default: env DTM_HTTP_TOKEN_FILE; none: the API is open).")
    Path httpTokenFile;

    @Override
    public Integer call() throws Exception {
        AggregatorApp.Config config = AggregatorApp.Config.builder(connection.bootstrapServers(), connection.registry())
                .clientProps(connection.clientProps()).replicationFactor(replicationFactor).stateDir(stateDir)
                .httpPort(httpPort).httpBindHost(bindHost).httpAdvertisedHost(advertisedHost)
                .httpToken(token(httpTokenFile)).build();
        CountDownLatch stop = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        // the JVM halts once hooks return: wait for Kafka Streams to close cleanly, or the next start rebalances for long
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stop.countDown();
            Shutdown.await(closed);
        }));
        try (AggregatorApp app = AggregatorApp.start(config)) {
            System.out.println("aggregator up; queries at http://" + app.restAddress().host() + ":"
                    + app.restAddress().port() + "/sweeps/{sweepId}/ranking and /schedule");
            stop.await();
        } finally {
            closed.countDown();
        }
        return 0;
    }

    /** The token in {@code file} (surrounding whitespace and the final newline dropped), or null without a file. */
    static String token(Path file) throws IOException {
        if (file == null) {
            return null;
        }
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("token file " + file + " does not exist");
        }
        return Files.readString(file, StandardCharsets.UTF_8).strip();
    }
}
