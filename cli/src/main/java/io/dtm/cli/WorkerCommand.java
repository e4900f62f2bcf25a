package io.dtm.cli;

import io.dtm.worker.TrialWorker;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
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

    @Option(names = "--group", defaultValue = "dtm-workers", description = "Consumer group (default: ${DEFAULT-VALUE}).")
    String group;

    @Option(names = "--worker-id", description = "Id of this worker, unique in the group (default: host-pid-random).")
    String workerId;

    @Option(names = "--model-root", description = "Directory that relative model names in trials resolve against.")
    Path modelRoot;

    @Option(names = "--max-trial-minutes", defaultValue = "60",
            description = "Longest a trial shard may take before the group reassigns it (default: ${DEFAULT-VALUE}).")
    long maxTrialMinutes;

    @Override
    public Integer call() throws Exception {
        String id = workerId != null ? workerId : defaultId();
        TrialWorker worker = new TrialWorker(config(connection, engine, group, id, modelRoot, maxTrialMinutes));
        CountDownLatch stopped = new CountDownLatch(1);
        // on SIGTERM: finish or abandon the trial in progress (it is redelivered), then let the JVM halt
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            worker.close();
            Shutdown.await(stopped);
        }));
        System.out.println("worker " + id + " joined group " + group);
        try {
            worker.run();
        } finally {
            stopped.countDown();
        }
        return 0;
    }

    static TrialWorker.Config config(ConnectionMixin connection, EngineMixin engine, String group, String id,
                                     Path modelRoot, long maxTrialMinutes) {
        return new TrialWorker.Config(connection.clientProps(), connection.registry(), group, id, modelRoot,
                engine.options(), Duration.ofMinutes(maxTrialMinutes), 4);
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

    static List<Thread> startThreads(List<TrialWorker> workers) {
        List<Thread> threads = new ArrayList<>();
        for (TrialWorker w : workers) {
            Thread t = new Thread(w, "worker-" + threads.size());
            t.setDaemon(true);
            t.start();
            threads.add(t);
        }
        return threads;
    }
}
