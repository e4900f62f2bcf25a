package io.dtm.cli;

import io.dtm.schemas.http.BoundedHttpServer;
import io.dtm.worker.TrialWorker;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "worker", mixinStandardHelpOptions = true, description = "Join the GPU-worker consumer group; start more processes to scale out.")
final class WorkerCommand implements Callable<Integer> {

    @Mixin
    ConnectionMixin connection;

    @Mixin
    EngineMixin engine;

    @Option(names = "--group", defaultValue = TrialWorker.Config.DEFAULT_GROUP, description = "Consumer group (default: ${DEFAULT-VALUE}).")
    String group;

    @Option(names = "--worker-id", description = "Id of this worker, unique in the group (default: host-pid-random).")
    String workerId;

    @Option(names = "--model-root",
            description = "Only models inside this directory (links followed) may be loaded; names in trials resolve "
                    + "against it. Without it a trial may name any path this worker can read.")
    Path modelRoot;

    @Option(names = "--max-trial-minutes", defaultValue = "" + TrialWorker.Config.DEFAULT_MAX_TRIAL_MINUTES,
            description = "Longest a trial shard may take before the group reassigns it (default: ${DEFAULT-VALUE}).")
    long maxTrialMinutes;

    @Option(names = "--max-models", defaultValue = "" + TrialWorker.Config.DEFAULT_CACHED_MODELS,
            description = "Models kept loaded at once, least recently used unloaded first (default: ${DEFAULT-VALUE}).")
    int maxModels;

    @Option(names = "--max-trial-mb", defaultValue = "" + (TrialWorker.Config.DEFAULT_MAX_BATCH_BYTES >> 20),
            description = "Memory one forward batch of a trial may need, MB; a trial that needs more is dead-lettered "
                    + "before anything is allocated (default: ${DEFAULT-VALUE}).")
    long maxTrialMb;

    @Option(names = "--commit-interval-ms", defaultValue = "" + TrialWorker.Config.DEFAULT_COMMIT_INTERVAL_MS,
            description = "Trial shards scored within this time commit in one Kafka transaction, which costs about "
                    + "as much as a 1B model's shard on a GPU; 0 commits each shard alone (default: ${DEFAULT-VALUE}).")
    long commitIntervalMs;

    @Option(names = "--health-port",
            description = "Serve GET /health on 127.0.0.1 at this port: 200 UP, or 503 DOWN with the reasons.")
    Integer healthPort;

    @Override
    public Integer call() throws Exception {
        String id = workerId != null ? workerId : defaultId();
        TrialWorker worker = new TrialWorker(config(connection, engine, group, id, modelRoot, maxTrialMinutes,
                maxModels, maxTrialMb, commitIntervalMs));
        BoundedHttpServer health = healthPort == null ? null : healthServer(worker, healthPort);
        CountDownLatch stopped = new CountDownLatch(1);
        // on SIGTERM: finish or abandon the trial in progress (it is redelivered), then let the JVM halt
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            worker.close();
            Shutdown.await(stopped);
        }));
        System.out.println("worker " + id + " joined group " + group
                + (health == null ? "" : "; health at http://127.0.0.1:" + health.port() + "/health"));
        try {
            worker.run();
        } finally {
            if (health != null) {
                health.close();
            }
            stopped.countDown();
        }
        return 0;
    }

    static TrialWorker.Config config(ConnectionMixin connection, EngineMixin engine, String group, String id,
                                     Path modelRoot, long maxTrialMinutes, int maxModels, long maxTrialMb,
                                     long commitIntervalMs) {
        return new TrialWorker.Config(connection.clientProps(), connection.registry(), group, id, modelRoot,
                engine.options(), Duration.ofMinutes(maxTrialMinutes), TrialWorker.Config.DEFAULT_CACHED_PROMPT_SETS,
                maxModels, maxTrialMb << 20, Duration.ofMillis(commitIntervalMs));
    }

    /** {@code GET /health} of {@code worker} on 127.0.0.1 only: for the host's (or container's) own checks. */
    static BoundedHttpServer healthServer(TrialWorker worker, int port) throws IOException {
        BoundedHttpServer server = BoundedHttpServer.bind(new InetSocketAddress("127.0.0.1", port),
                BoundedHttpServer.Limits.defaults(), "dtm-worker-health");
        server.route("/health", (exchange, body) -> worker.health().send(exchange));
        server.start();
        return server;
    }

    static String defaultId() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (Exception e) {
            host = "worker";
        }
        // containers all run java as pid 1: a random suffix keeps ids (and transactional ids) unique
        return host + "-" + ManagementFactory.getRuntimeMXBean().getPid() + "-" + UUID.randomUUID().toString().substring(0, 6);
    }
}
