package io.dtm.schemas.http;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The JDK's HTTP server with the limits a port open to clients it does not control needs. Without them, four
 * connections trickling a byte at a time held every thread of the registry and the aggregator, and a 50 MB body was
 * parsed in full.
 *
 * <ul>
 *   <li>A bounded pool and queue: a connection that finds both full is closed at once instead of waiting forever.</li>
 *   <li>A read deadline per request: request line, headers and body must all arrive within {@link Limits#readTimeout};
 *   otherwise the thread reading them is interrupted, which closes the connection and frees the thread. (The JDK
 *   server reads a request on a pool thread, in blocking mode, with no deadline of its own unless a JVM-wide system
 *   property sets one.)</li>
 *   <li>A body cap: a declared {@code Content-Length} above {@link Limits#maxBodyBytes} is answered 413 before a byte
 *   of it is read; a chunked body is cut off, with 413, at the first byte over the cap.</li>
 * </ul>
 * Handlers receive the body already read, so they can never read past the cap or the deadline.
 */
public final class BoundedHttpServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(BoundedHttpServer.class);

    /**
     * @param threads      requests served at once
     * @param queue        accepted requests waiting for a thread; beyond it a connection is closed at once
     * @param readTimeout  how long a request may take to arrive, line, headers and body
     * @param maxBodyBytes the largest request body accepted
     */
    public record Limits(int threads, int queue, Duration readTimeout, int maxBodyBytes) {
        public Limits {
            if (threads < 1 || queue < 1) {
                throw new IllegalArgumentException("threads and queue must be >= 1, got " + threads + " and " + queue);
            }
            if (readTimeout == null || readTimeout.isNegative() || readTimeout.isZero()) {
                throw new IllegalArgumentException("readTimeout must be positive, got " + readTimeout);
            }
            if (maxBodyBytes < 0) {
                throw new IllegalArgumentException("maxBodyBytes must be >= 0, got " + maxBodyBytes);
            }
        }

        /** 8 threads, 64 queued, 10 s to send a request, bodies up to 1 MiB (an Avro schema is a few KiB). */
        public static Limits defaults() {
            return new Limits(8, 64, Duration.ofSeconds(10), 1 << 20);
        }
    }

    /** Serves one request whose body has been read in full, within the limits. */
    @FunctionalInterface
    public interface Handler {
        void handle(HttpExchange exchange, byte[] body) throws IOException;
    }

    /** The request a pool thread is reading, and whether its deadline still applies. */
    private static final class Reading {
        final Thread thread;
        final long deadline;
        /** READING until the handler takes over; EXPIRED once the watchdog interrupted the thread. */
        int state = READING;

        Reading(Thread thread, long deadline) {
            this.thread = thread;
            this.deadline = deadline;
        }
    }

    private static final int READING = 0;
    private static final int HANDLING = 1;
    private static final int EXPIRED = 2;

    private final HttpServer server;
    private final Limits limits;
    private final ThreadPoolExecutor pool;
    private final ScheduledExecutorService watchdog;
    private final Map<Thread, Reading> reading = new ConcurrentHashMap<>();

    private BoundedHttpServer(HttpServer server, Limits limits, String name) {
        this.server = server;
        this.limits = limits;
        AtomicInteger threads = new AtomicInteger();
        this.pool = new ThreadPoolExecutor(limits.threads(), limits.threads(), 0, TimeUnit.MILLISECONDS,
                new ArrayBlockingQueue<>(limits.queue()), r -> {
                    Thread t = new Thread(r, name + "-" + threads.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                }) {
            @Override
            protected void beforeExecute(Thread t, Runnable r) {
                reading.put(t, new Reading(t, System.nanoTime() + limits.readTimeout().toNanos()));
            }

            @Override
            protected void afterExecute(Runnable r, Throwable failure) {
                Reading done = reading.remove(Thread.currentThread());
                if (done != null) {
                    synchronized (done) {
                        done.state = HANDLING; // no interrupt can arrive after this
                    }
                }
                Thread.interrupted(); // a deadline that fired as the request ended must not hit the next one
            }
        };
        this.watchdog = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, name + "-deadlines");
            t.setDaemon(true);
            return t;
        });
        long tick = Math.max(10, Math.min(250, limits.readTimeout().toMillis() / 4));
        watchdog.scheduleAtFixedRate(this::expire, tick, tick, TimeUnit.MILLISECONDS);
        server.setExecutor(pool);
    }

    /**
     * Binds the address without serving yet (port 0 picks a free one; {@link #port()} tells which).
     *
     * @param name prefix of the server's thread names
     */
    public static BoundedHttpServer bind(InetSocketAddress address, Limits limits, String name) throws IOException {
        return new BoundedHttpServer(HttpServer.create(address, 0), limits, name);
    }

    public InetSocketAddress address() {
        return server.getAddress();
    }

    public int port() {
        return server.getAddress().getPort();
    }

    /** Routes requests under {@code path} to {@code handler}, their body read and capped first. */
    public void route(String path, Handler handler) {
        server.createContext(path, exchange -> {
            try (exchange) {
                byte[] body = readBody(exchange);
                if (body == null || !startHandling()) {
                    return;
                }
                handler.handle(exchange, body);
            }
        });
    }

    public void start() {
        server.start();
    }

    @Override
    public void close() {
        server.stop(0);
        watchdog.shutdownNow();
        pool.shutdownNow();
    }

    /** Writes a response in full; a body-less status (204, 304) is sent without one. */
    public static void respond(HttpExchange exchange, int status, String contentType, byte[] body) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", contentType);
        exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    /** The body, or null when it was refused (413 already sent). */
    private byte[] readBody(HttpExchange exchange) throws IOException {
        String declared = exchange.getRequestHeaders().getFirst("Content-Length");
        if (declared != null) {
            long length;
            try {
                length = Long.parseLong(declared.trim());
            } catch (NumberFormatException e) {
                length = -1;
            }
            if (length > limits.maxBodyBytes()) {
                tooLarge(exchange);
                return null;
            }
        }
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        try (InputStream in = exchange.getRequestBody()) {
            for (int n; (n = in.read(buffer)) >= 0; ) {
                if (body.size() + n > limits.maxBodyBytes()) {
                    tooLarge(exchange);
                    return null;
                }
                body.write(buffer, 0, n);
            }
        }
        return body.toByteArray();
    }

    /**
     * Answers 413 still under the read deadline: closing the exchange drains what the client keeps sending, and a
     * client trickling the rest must not hold the thread there.
     */
    private void tooLarge(HttpExchange exchange) throws IOException {
        LOG.warn("refused a request body over {} bytes from {}", limits.maxBodyBytes(), exchange.getRemoteAddress());
        // The unread rest of the body cannot be skipped cheaply: answer and close the connection.
        exchange.getResponseHeaders().set("Connection", "close");
        respond(exchange, 413, "application/json", ("{\"error\": \"request body larger than "
                + limits.maxBodyBytes() + " bytes\"}").getBytes(StandardCharsets.UTF_8));
    }

    /** Ends the current thread's read deadline; false if it already expired (the connection is being closed). */
    private boolean startHandling() {
        Reading r = reading.get(Thread.currentThread());
        if (r == null) {
            return true;
        }
        synchronized (r) {
            if (r.state == EXPIRED) {
                return false;
            }
            r.state = HANDLING;
            return true;
        }
    }

    private void expire() {
        long now = System.nanoTime();
        for (Reading r : reading.values()) {
            if (now - r.deadline < 0) {
                continue;
            }
            synchronized (r) {
                if (r.state == READING) {
                    r.state = EXPIRED;
                    // The JDK server reads through an interruptible channel: this closes the connection.
                    r.thread.interrupt();
                    LOG.warn("closed a connection that took over {} ms to send its request",
                            limits.readTimeout().toMillis());
                }
            }
        }
    }

}
