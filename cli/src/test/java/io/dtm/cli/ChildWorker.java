package io.dtm.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;

/**
 * {@code dtm worker} as a separate JVM ({@code io.dtm.cli.Dtm worker ...} on this JVM's class path), its output
 * collected line by line. It can be killed with SIGKILL the instant a line matches, so that whatever it was doing then
 * is cut off before the next step: no shutdown hook runs and no open transaction commits.
 */
final class ChildWorker implements AutoCloseable {

    private final Process process;
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final AtomicReference<String> killedAt = new AtomicReference<>();
    private final Thread reader;
    private volatile Predicate<String> killOn = line -> false;

    private ChildWorker(Process process, String name) {
        this.process = process;
        this.reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.UTF_8))) {
                for (String line = in.readLine(); line != null; line = in.readLine()) {
                    if (killedAt.get() == null && killOn.test(line)) {
                        process.destroyForcibly(); // SIGKILL, before anything else: the child gets no further
                        killedAt.set(line);
                    }
                    lines.add(line);
                    System.out.println("[" + name + "] " + line);
                }
            } catch (IOException ignored) {
                // the child is gone
            }
        }, "child-output-" + name);
        reader.setDaemon(true);
        reader.start();
    }

    /** Starts {@code dtm worker} with these arguments after the subcommand. */
    static ChildWorker start(String name, List<String> workerArgs) throws IOException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> command = new ArrayList<>(List.of(java.toString(),
                "-cp", System.getProperty("java.class.path"),
                "-Xss4m",
                "-Dorg.apache.avro.SERIALIZABLE_PACKAGES=io.dtm",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dorg.slf4j.simpleLogger.log.io.dtm=info",
                "io.dtm.cli.Dtm", "worker"));
        command.addAll(workerArgs);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().put("OPT_OUT_TRACKING", "true");
        return new ChildWorker(builder.start(), name);
    }

    /** From now on, SIGKILL the child as soon as it prints a line {@code matching}. */
    void killOn(Predicate<String> matching) {
        this.killOn = matching;
    }

    /** The line that triggered the kill, or null. */
    String killedAt() {
        return killedAt.get();
    }

    List<String> lines() {
        return List.copyOf(lines);
    }

    boolean printed(String text) {
        return lines.stream().anyMatch(l -> l.contains(text));
    }

    boolean alive() {
        return process.isAlive();
    }

    int waitForExit(long seconds) throws InterruptedException {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            throw new IllegalStateException("the child worker did not exit within " + seconds + " s");
        }
        reader.join(5_000);
        return process.exitValue();
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
