package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Wall time per phase of a trial, for profiling. Device work is asynchronous, so each phase ends by waiting for its
 * result (one element read back): the phases add up to a synchronised trial, slower than the fast path, which waits
 * once. Each phase also records its host time, until its last op was queued: where that is close to the phase's time
 * the host, not the device, bounds it. {@link #OFF} records nothing and waits for nothing.
 */
final class PhaseClock {

    static final PhaseClock OFF = new PhaseClock(false);

    private final boolean on;
    private final Map<String, Double> millis = new LinkedHashMap<>();
    private final Map<String, Double> hostMillis = new LinkedHashMap<>();
    private long last = System.nanoTime();

    private PhaseClock(boolean on) {
        this.on = on;
    }

    static PhaseClock start() {
        return new PhaseClock(true);
    }

    /** Ends {@code phase} once {@code result} is computed (if the clock is on). */
    void end(String phase, NDArray result) {
        if (!on) {
            return;
        }
        hostMillis.merge(phase, (System.nanoTime() - last) / 1e6, Double::sum);
        if (result != null && result.size() > 0) {
            result.reshape(-1).get(0).toByteArray();
        }
        long now = System.nanoTime();
        millis.merge(phase, (now - last) / 1e6, Double::sum);
        last = now;
    }

    /** Milliseconds per phase, in the order phases first ended. */
    Map<String, Double> millis() {
        return java.util.Collections.unmodifiableMap(new LinkedHashMap<>(millis));
    }

    /** Of those, the milliseconds until the phase's ops were queued. */
    Map<String, Double> hostMillis() {
        return java.util.Collections.unmodifiableMap(new LinkedHashMap<>(hostMillis));
    }
}
