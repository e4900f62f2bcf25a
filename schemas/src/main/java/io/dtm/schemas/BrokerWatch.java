package io.dtm.schemas;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

/**
 * Whether the Kafka cluster answers, asked every {@code interval}. Consumers, producers and Kafka Streams retry an
 * unreachable cluster forever without reporting it, so a service whose broker is gone would otherwise look healthy.
 */
public final class BrokerWatch implements AutoCloseable {

    public static final Duration DEFAULT_INTERVAL = Duration.ofSeconds(5);

    private final Admin admin;
    private final Duration interval;
    private final String bootstrap;
    private final ScheduledExecutorService timer;
    private volatile long lastAnswer = System.nanoTime();
    private volatile String lastError = "";

    private BrokerWatch(Admin admin, Duration interval, String bootstrap) {
        this.admin = admin;
        this.interval = interval;
        this.bootstrap = bootstrap;
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "dtm-broker-watch");
            t.setDaemon(true);
            return t;
        });
        timer.scheduleWithFixedDelay(this::ask, 0, interval.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** Starts asking the cluster {@code clientProps} reach (bootstrap servers plus security settings). */
    public static BrokerWatch start(Map<String, Object> clientProps, Duration interval) {
        if (interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("interval must be positive, got " + interval);
        }
        Map<String, Object> props = new HashMap<>(clientProps);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "dtm-broker-watch");
        int timeout = (int) interval.multipliedBy(2).toMillis();
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, timeout);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, timeout);
        return new BrokerWatch(Admin.create(props), interval,
                String.valueOf(props.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG)));
    }

    /** Empty while the cluster answered within the last three intervals; otherwise what is wrong. */
    public Optional<String> problem() {
        long silent = System.nanoTime() - lastAnswer;
        if (silent < interval.multipliedBy(3).toNanos()) {
            return Optional.empty();
        }
        return Optional.of("Kafka at " + bootstrap + " has not answered for " + TimeUnit.NANOSECONDS.toSeconds(silent)
                + " s" + (lastError.isEmpty() ? "" : " (" + lastError + ")"));
    }

    private void ask() {
        long timeout = interval.multipliedBy(2).toMillis();
        try {
            admin.describeCluster(new DescribeClusterOptions().timeoutMs((int) timeout)).nodes()
                    .get(timeout + 1000, TimeUnit.MILLISECONDS);
            lastAnswer = System.nanoTime();
            lastError = "";
        } catch (ExecutionException e) {
            lastError = String.valueOf(e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            lastError = "no answer within " + timeout + " ms";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        timer.shutdownNow();
        admin.close(Duration.ofSeconds(1));
    }
}
