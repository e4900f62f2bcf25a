package io.dtm.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.MetadataVersion;

/**
 * A single KRaft node with SASL/PLAIN on its client listener and Kafka's standard authorizer: what a secured
 * deployment runs, started in this JVM. Users are {@code name -> password}; {@code admin} is the super user. The JAAS
 * settings are per listener and per client, so nothing JVM-wide is touched.
 */
final class SecuredBroker implements AutoCloseable {

    private final KafkaRaftServer server;
    private final String bootstrap;

    SecuredBroker(Path dir, Map<String, String> users) throws Exception {
        int port;
        int controller;
        // both held open at once, so the kernel cannot hand out the same port twice
        try (ServerSocket a = bind(); ServerSocket b = bind()) {
            port = a.getLocalPort();
            controller = b.getLocalPort();
        }
        bootstrap = "127.0.0.1:" + port;
        new Formatter().setPrintStream(new PrintStream(OutputStream.nullOutputStream())).setNodeId(1)
                .setClusterId(Uuid.randomUuid().toString()).setDirectories(List.of(dir.toString()))
                .setMetadataLogDirectory(dir.toString()).setControllerListenerName("CONTROLLER")
                .setReleaseVersion(MetadataVersion.LATEST_PRODUCTION).setHasDynamicQuorum(false).run();
        StringBuilder jaas = new StringBuilder("org.apache.kafka.common.security.plain.PlainLoginModule required"
                + " username=\"admin\" password=\"" + users.get("admin") + "\"");
        users.forEach((user, password) -> jaas.append(" user_").append(user).append("=\"").append(password).append('"'));
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", "1");
        p.put("controller.quorum.voters", "1@127.0.0.1:" + controller);
        p.put("listeners", "SASL_PLAINTEXT://127.0.0.1:" + port + ",CONTROLLER://127.0.0.1:" + controller);
        p.put("advertised.listeners", "SASL_PLAINTEXT://127.0.0.1:" + port);
        p.put("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.put("controller.listener.names", "CONTROLLER");
        p.put("inter.broker.listener.name", "SASL_PLAINTEXT");
        p.put("sasl.enabled.mechanisms", "PLAIN");
        p.put("sasl.mechanism.inter.broker.protocol", "PLAIN");
        p.put("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas + ";");
        p.put("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer");
        // the node talks to its own controller over the unauthenticated controller listener
        p.put("super.users", "User:admin;User:ANONYMOUS");
        p.put("log.dirs", dir.toString());
        p.put("num.partitions", "2");
        p.put("offsets.topic.replication.factor", "1");
        p.put("offsets.topic.num.partitions", "2");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("transaction.state.log.num.partitions", "2");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("group.initial.rebalance.delay.ms", "0");
        server = new KafkaRaftServer(KafkaConfig.fromProps(p), Time.SYSTEM);
        server.startup();
    }

    String bootstrapServers() {
        return bootstrap;
    }

    /** Client settings that authenticate as {@code user}. */
    Map<String, Object> client(String user, String password) {
        return Map.of("bootstrap.servers", bootstrap, "security.protocol", "SASL_PLAINTEXT", "sasl.mechanism", "PLAIN",
                "sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\""
                        + user + "\" password=\"" + password + "\";");
    }

    @Override
    public void close() {
        server.shutdown();
        server.awaitShutdown();
    }

    private static ServerSocket bind() throws IOException {
        return new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"));
    }
}
