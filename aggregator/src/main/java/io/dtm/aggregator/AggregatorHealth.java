package io.dtm.aggregator;

import io.dtm.schemas.http.Health;
import org.apache.kafka.streams.KafkaStreams;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * What the aggregator's {@code GET /health} says. Kafka Streams alone reports RUNNING in two cases where the
 * aggregator does not work: while a stream thread dies again and again (it is replaced each time, and the sweeps of its
 * tasks answer 503), and while the cluster is gone (clients retry forever). Both turn it DOWN.
 */
final class AggregatorHealth {
    /** Thread failures within {@link #WINDOW} that mean "keeps dying" rather than a transient hiccup. */
    static final int FAILURES = 3;
    static final Duration WINDOW = Duration.ofMinutes(5);

    private final Supplier<KafkaStreams.State> state;
    private final Supplier<Optional<String>> broker;
    private final Deque<Long> failures = new ArrayDeque<>();
    private String lastFailure = "";

    AggregatorHealth(Supplier<KafkaStreams.State> state, Supplier<Optional<String>> broker) {
        this.state = state;
        this.broker = broker;
    }

    synchronized void threadFailed(Throwable failure) {
        failures.addLast(System.nanoTime());
        Throwable root = failure;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        lastFailure = root.toString();
    }

    Health health() {
        List<String> problems = new ArrayList<>();
        KafkaStreams.State now = state.get();
        if (!now.isRunningOrRebalancing()) {
            problems.add("Kafka Streams is " + now);
        }
        synchronized (this) {
            long since = System.nanoTime() - WINDOW.toNanos();
            while (!failures.isEmpty() && failures.peekFirst() - since < 0) {
                failures.removeFirst();
            }
            if (failures.size() >= FAILURES) {
                problems.add("stream threads failed " + failures.size() + " times in the last " + WINDOW.toMinutes()
                        + " minutes (last: " + lastFailure + "); the sweeps of their tasks are not being processed");
            }
        }
        broker.get().ifPresent(problems::add);
        return new Health(now.name(), problems);
    }
}
