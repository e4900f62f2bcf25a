package io.dtm.cli;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** Shutdown hooks wait for their service to close: once every hook returns, the JVM halts mid-close. */
final class Shutdown {

    private static final long GRACE_SECONDS = 60;

    private Shutdown() {}

    static void await(CountDownLatch closed) {
        try {
            closed.await(GRACE_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
