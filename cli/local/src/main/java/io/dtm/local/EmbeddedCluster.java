package io.dtm.local;

import io.dtm.schemas.Topics;
import io.dtm.schemas.registry.KafkaSchemaRegistryServer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.net.BindException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.MetadataVersion;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A complete single-machine pipeline backbone in this JVM: one Kafka 4.1 node acting as broker and KRaft controller,
 * the pipeline's topics, and the Kafka-backed schema registry. For demos, tests and laptops; a real deployment points
 * the services at an external cluster and creates the topics there with {@code dtm topics create}.
 *
 * <p>The node is configured for exactly-once on a single broker (replication factor 1 for the offsets and transaction
 * logs, min ISR 1), so transactional producers and Streams with {@code exactly_once_v2} work against it. Like any
 * Kafka server it treats some internal faults as fatal and halts the JVM it runs in.
 */
public final class EmbeddedCluster implements AutoCloseable {

    /**
     * Partitions of every pipeline topic here, fewer than a deployment's ({@link Topics}): enough for a few workers to
     * share the trial queue, and few enough that the first group join and transaction are quick on a laptop.
     */
    public static final int PARTITIONS = 4;

    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedCluster.class);
    private static final String HOST = "127.0.0.1";
    private static final int NODE_ID = 1;
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);
    private static final int PORT_ATTEMPTS = 3;
    private static final String PORTS_FILE = "ports.properties";
    private static final String BROKER_PORT = "broker.port";
    private static final String REGISTRY_PORT = "registry.port";

    private final KafkaRaftServer server;
    private final KafkaSchemaRegistryServer registry;
    private final String bootstrapServers;
    private final TempDir tempDir;
    private boolean closed;

    private EmbeddedCluster(KafkaRaftServer server, KafkaSchemaRegistryServer registry, String bootstrapServers,
                            TempDir tempDir) {
        this.server = server;
        this.registry = registry;
        this.bootstrapServers = bootstrapServers;
        this.tempDir = tempDir;
    }

    /**
     * Formats (first time only) and starts the node, waits until it answers, creates the pipeline topics and starts
     * the schema registry on a free port of 127.0.0.1.
     *
     * @param dataDir where Kafka keeps its logs; reused across starts, so topics and registered schemas survive.
     *                {@code null}: a temporary directory, deleted on {@link #close()}
     */
    public static EmbeddedCluster start(Path dataDir) {
        return start(dataDir, 0, 0);
    }

    /**
     * As {@link #start(Path)}, on the given ports. A port of 0 is the one the data directory was last served on, or a
     * free one the first time (or without a data directory): a restarted broker comes back where its clients, which
     * retry the old address forever, look for it.
     *
     * @throws IllegalStateException naming the port when a given or kept port is in use
     */
    public static EmbeddedCluster start(Path dataDir, int brokerPort, int registryPort) {
        if (brokerPort < 0 || brokerPort > 65535 || registryPort < 0 || registryPort > 65535) {
            throw new IllegalArgumentException("ports must be within 0..65535, got " + brokerPort + " and "
                    + registryPort);
        }
        TempDir tempDir = dataDir == null ? TempDir.create("dtm-kafka-") : null;
        try {
            Path root = dataDir != null ? dataDir : tempDir.path();
            Path logDir = Files.createDirectories(root.resolve("kraft"));
            format(logDir);
            Properties kept = keptPorts(root);
            int broker = brokerPort != 0 ? brokerPort : Integer.parseInt(kept.getProperty(BROKER_PORT, "0"));
            int registryAt = registryPort != 0 ? registryPort : Integer.parseInt(kept.getProperty(REGISTRY_PORT, "0"));
            KafkaRaftServer server = null;
            String bootstrap = null;
            for (int attempt = 1; server == null; attempt++) {
                int port = broker != 0 ? broker : freePort();
                // the controller port may change between starts (a static voter set), so it is never kept
                int controllerPort = freePortOtherThan(port);
                bootstrap = HOST + ":" + port;
                try {
                    server = startServer(logDir, port, controllerPort);
                } catch (RuntimeException e) {
                    // A free port can be taken by someone else between our probe and Kafka's bind.
                    if (attempt >= PORT_ATTEMPTS || !causedByBind(e)) {
                        if (broker != 0 && causedByBind(e)) {
                            throw new IllegalStateException("cannot listen on " + bootstrap + " (" + (brokerPort != 0
                                    ? "--port" : "the port data directory " + root + " was served on")
                                    + "): is it in use?", e);
                        }
                        throw e;
                    }
                    LOG.warn("port {} or {} was taken meanwhile; retrying with others", port, controllerPort);
                }
            }
            try {
                Map<String, Object> admin = Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                awaitReady(admin);
                Topics.create(admin, PARTITIONS, (short) 1);
                KafkaSchemaRegistryServer registry;
                try {
                    registry = KafkaSchemaRegistryServer.start(admin, HOST, registryAt);
                } catch (UncheckedIOException e) {
                    throw new IllegalStateException("cannot serve the schema registry on " + HOST + ":" + registryAt
                            + ": is it in use?", e);
                }
                if (dataDir != null) {
                    try {
                        keepPorts(root, bootstrap, registry.url());
                    } catch (IOException e) {
                        registry.close();
                        throw new UncheckedIOException("cannot record the ports in " + root, e);
                    }
                }
                LOG.info("embedded Kafka at {} (data in {}), schema registry at {}", bootstrap, root, registry.url());
                return new EmbeddedCluster(server, registry, bootstrap, tempDir);
            } catch (RuntimeException e) {
                stop(server);
                throw e;
            }
        } catch (IOException e) {
            delete(tempDir);
            throw new UncheckedIOException("cannot prepare the embedded Kafka data directory", e);
        } catch (RuntimeException e) {
            delete(tempDir);
            throw e;
        }
    }

    /** {@code host:port} for {@code bootstrap.servers}. */
    public String bootstrapServers() {
        return bootstrapServers;
    }

    /** The schema registry's base URL, e.g. {@code http://127.0.0.1:40123}. */
    public String registryUrl() {
        return registry.url();
    }

    /** Stops the registry, then the node, then deletes the temporary data directory if there is one. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            registry.close();
        } finally {
            stop(server);
            delete(tempDir);
        }
    }

    /**
     * Writes the node's identity into a new log directory; one formatted before is kept as it is. The check is ours:
     * the formatter's ignore-formatted flag still compares cluster ids and refuses a directory formatted with another.
     */
    private static void format(Path logDir) {
        if (Files.exists(logDir.resolve("meta.properties"))) {
            return;
        }
        try {
            new Formatter()
                    .setPrintStream(new PrintStream(OutputStream.nullOutputStream()))
                    .setNodeId(NODE_ID)
                    .setClusterId(Uuid.randomUuid().toString())
                    .setDirectories(List.of(logDir.toString()))
                    .setMetadataLogDirectory(logDir.toString())
                    .setControllerListenerName("CONTROLLER")
                    .setReleaseVersion(MetadataVersion.LATEST_PRODUCTION)
                    .setHasDynamicQuorum(false)
                    .run();
        } catch (Exception e) {
            throw new IllegalStateException("cannot format Kafka storage in " + logDir + ": " + e.getMessage(), e);
        }
    }

    private static KafkaRaftServer startServer(Path logDir, int brokerPort, int controllerPort) {
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", String.valueOf(NODE_ID));
        // A static voter set (not a dynamic quorum) lets the controller port change between starts of one data dir.
        p.put("controller.quorum.voters", NODE_ID + "@" + HOST + ":" + controllerPort);
        p.put("listeners", "PLAINTEXT://" + HOST + ":" + brokerPort + ",CONTROLLER://" + HOST + ":" + controllerPort);
        p.put("advertised.listeners", "PLAINTEXT://" + HOST + ":" + brokerPort);
        p.put("controller.listener.names", "CONTROLLER");
        p.put("inter.broker.listener.name", "PLAINTEXT");
        p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.put("log.dirs", logDir.toString());
        p.put("num.partitions", String.valueOf(PARTITIONS));
        p.put("default.replication.factor", "1");
        // Exactly-once on one broker: transactional producers time out in initTransactions without these.
        p.put("offsets.topic.replication.factor", "1");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        // The defaults (50 partitions each) make the first consumer group and the first transaction take seconds.
        p.put("offsets.topic.num.partitions", String.valueOf(PARTITIONS));
        p.put("transaction.state.log.num.partitions", String.valueOf(PARTITIONS));
        p.put("group.initial.rebalance.delay.ms", "0");
        KafkaRaftServer server = new KafkaRaftServer(KafkaConfig.fromProps(p), Time.SYSTEM);
        try {
            server.startup();
        } catch (RuntimeException e) {
            stop(server);
            throw e;
        }
        return server;
    }

    private static void awaitReady(Map<String, Object> adminProps) {
        try (Admin admin = Admin.create(adminProps)) {
            long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
            while (true) {
                try {
                    if (!admin.describeCluster().nodes().get(5, TimeUnit.SECONDS).isEmpty()) {
                        return;
                    }
                } catch (ExecutionException | TimeoutException e) {
                    if (System.nanoTime() > deadline) {
                        throw new IllegalStateException("embedded Kafka at "
                                + adminProps.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG) + " did not answer within "
                                + READY_TIMEOUT.toSeconds() + " s", e);
                    }
                }
                Thread.sleep(100);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for embedded Kafka", e);
        }
    }

    private static void delete(TempDir tempDir) {
        if (tempDir != null) {
            tempDir.close();
        }
    }

    private static void stop(KafkaRaftServer server) {
        try {
            server.shutdown();
            server.awaitShutdown();
        } catch (RuntimeException e) {
            LOG.warn("embedded Kafka did not shut down cleanly", e);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
            return socket.getLocalPort();
        }
    }

    /** The kernel may hand back a port it just handed out once that socket is closed; Kafka refuses one port twice. */
    private static int freePortOtherThan(int taken) throws IOException {
        int port = freePort();
        while (port == taken) {
            port = freePort();
        }
        return port;
    }

    private static boolean causedByBind(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof BindException) {
                return true;
            }
        }
        return false;
    }

    /** The ports a data directory was last served on (empty the first time). */
    private static Properties keptPorts(Path root) throws IOException {
        Properties ports = new Properties();
        Path file = root.resolve(PORTS_FILE);
        if (Files.isRegularFile(file)) {
            try (Reader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
                ports.load(in);
            }
        }
        return ports;
    }

    private static void keepPorts(Path root, String bootstrap, String registryUrl) throws IOException {
        Properties ports = new Properties();
        ports.setProperty(BROKER_PORT, bootstrap.substring(bootstrap.lastIndexOf(':') + 1));
        ports.setProperty(REGISTRY_PORT, registryUrl.substring(registryUrl.lastIndexOf(':') + 1));
        try (Writer out = Files.newBufferedWriter(root.resolve(PORTS_FILE), StandardCharsets.UTF_8)) {
            ports.store(out, "the ports this data directory is served on; dtm broker --data-dir reuses them");
        }
    }
}
