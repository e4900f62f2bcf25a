package io.dtm.schemas.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.schemas.http.BoundedHttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Issue 8, item 5: clients that trickle bytes or send huge bodies must not take the registry down. Real sockets against
 * the registry's HTTP server, with small limits so the test is quick.
 */
class RegistryHttpServerLimitsTest {

    private static final BoundedHttpServer.Limits LIMITS = new BoundedHttpServer.Limits(2, 4, Duration.ofSeconds(1),
            64 * 1024);

    private final SchemaRegistryCore core = new SchemaRegistryCore();
    private final RegistryHttpServer server = RegistryHttpServer.start(core, r -> { }, null, 0, LIMITS);
    private final List<Socket> sockets = new ArrayList<>();

    @AfterEach
    void stop() throws IOException {
        for (Socket s : sockets) {
            s.close();
        }
        server.close();
    }

    @Test
    void clientsTricklingBytesAreCutOffAndOthersAreStillServed() throws Exception {
        // more slow clients than the server has threads (2): the normal request queues behind them
        List<Trickler> tricklers = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            tricklers.add(new Trickler(connect()));
        }
        tricklers.forEach(Thread::start);
        Thread.sleep(300);

        long start = System.nanoTime();
        HttpResponse<String> answer = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create(server.url() + "/subjects")).timeout(Duration.ofSeconds(10)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertEquals(200, answer.statusCode(), answer.body());
        assertEquals("[]", answer.body());
        assertTrue(millis < 5_000, "a normal request waited " + millis + " ms behind the slow ones");

        for (Trickler t : tricklers) {
            t.join(5_000);
            assertTrue(t.cutOff, "a trickling client is disconnected");
        }
    }

    @Test
    void aDeclaredBodyOverTheCapIsRefusedBeforeItIsRead() throws Exception {
        Socket socket = connect();
        OutputStream out = socket.getOutputStream();
        out.write(("POST /subjects/big-value/versions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Content-Length: 52428800\r\n\r\n[").getBytes(StandardCharsets.US_ASCII));
        out.flush();
        assertEquals("HTTP/1.1 413", statusLine(socket).substring(0, 12));
        assertEquals(List.of(), core.subjects());
    }

    @Test
    void aChunkedBodyIsCutOffAtTheCap() throws Exception {
        Socket socket = connect();
        OutputStream out = socket.getOutputStream();
        out.write(("POST /subjects/big-value/versions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        byte[] chunk = new byte[16 * 1024];
        java.util.Arrays.fill(chunk, (byte) '[');
        try {
            // 50 MB would follow; the server must answer long before
            for (int i = 0; i < 50 * 64; i++) {
                out.write((Integer.toHexString(chunk.length) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(chunk);
                out.write("\r\n".getBytes(StandardCharsets.US_ASCII));
                if (socket.getInputStream().available() > 0) {
                    break;
                }
            }
        } catch (IOException closed) {
            // the server closed the connection after answering
        }
        assertEquals("HTTP/1.1 413", statusLine(socket).substring(0, 12));
        assertEquals(List.of(), core.subjects());
    }

    private Socket connect() throws IOException {
        URI uri = URI.create(server.url());
        Socket socket = new Socket(uri.getHost(), uri.getPort());
        socket.setSoTimeout(10_000);
        sockets.add(socket);
        return socket;
    }

    private static String statusLine(Socket socket) throws IOException {
        InputStream in = socket.getInputStream();
        StringBuilder line = new StringBuilder();
        for (int c; (c = in.read()) >= 0 && c != '\n'; ) {
            line.append((char) c);
        }
        return line.toString();
    }

    /** Sends a request line and then a header one byte every 100 ms, never finishing it. */
    private static final class Trickler extends Thread {
        private final Socket socket;
        volatile boolean cutOff;

        Trickler(Socket socket) {
            this.socket = socket;
            setDaemon(true);
        }

        @Override
        public void run() {
            try {
                OutputStream out = socket.getOutputStream();
                out.write("GET /subjects HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
                long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
                while (System.nanoTime() < deadline) {
                    out.write('a');
                    out.flush();
                    Thread.sleep(100);
                }
            } catch (IOException e) {
                cutOff = true; // writing fails once the server has closed the connection
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
