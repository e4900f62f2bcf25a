package io.dtm.cli;

import io.dtm.local.EmbeddedCluster;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "broker", mixinStandardHelpOptions = true, description = "Start the embedded Kafka broker (KRaft) and schema registry alone, for local work.")
final class BrokerCommand implements Callable<Integer> {

    @Option(names = "--data-dir",
            description = "Keep the broker's data, and its ports, here across restarts (default: a temp dir).")
    Path dataDir;

    @Option(names = "--port", defaultValue = "0",
            description = "The broker's port on 127.0.0.1 (default: the data dir's last one, else a free one).")
    int port;

    @Option(names = "--registry-port", defaultValue = "0",
            description = "The schema registry's port on 127.0.0.1 (default: the data dir's last one, else a free one).")
    int registryPort;

    @Override
    public Integer call() throws Exception {
        CountDownLatch stop = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stop.countDown();
            Shutdown.await(closed);
        }));
        try (EmbeddedCluster cluster = EmbeddedCluster.start(dataDir, port, registryPort)) {
            System.out.println("bootstrap-servers: " + cluster.bootstrapServers());
            System.out.println("registry-url: " + cluster.registryUrl());
            System.out.println("e.g. ./dtm worker --bootstrap-servers " + cluster.bootstrapServers()
                    + " --registry-url " + cluster.registryUrl() + "   (Ctrl-C stops the broker)");
            stop.await();
        } finally {
            closed.countDown();
        }
        return 0;
    }
}
