package io.dtm.cli;

import io.dtm.worker.TrialWorker;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "worker", description = "Join the GPU-worker consumer group; start more processes to scale out.")
final class WorkerCommand implements Callable<Integer> {

    @Mixin
    ConnectionMixin connection;

    @Mixin
    EngineMixin engine;

    @Option(names = "--group", defaultValue = "dtm-workers", description = "Consumer group (default: ${DEFAULT-VALUE}).")
    String group;

    @Option(names = "--worker-id", description = "Stable id of this worker (default: host-pid).")
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
        Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            worker.close();
            try {
                main.join(30_000);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }));
        System.out.println("worker " + id + " joined group " + group);
        worker.run();
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
        return host + "-" + ManagementFactory.getRuntimeMXBean().getPid();
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
