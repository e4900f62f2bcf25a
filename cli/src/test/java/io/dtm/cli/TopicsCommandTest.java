package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.local.EmbeddedCluster;
import io.dtm.schemas.Topics;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.junit.jupiter.api.Test;

class TopicsCommandTest {

    @Test
    void createsWhatIsMissingWithTheRightCleanupPolicyAndLeavesTheRest() throws Exception {
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             Admin admin = Admin.create(Map.of("bootstrap.servers", cluster.bootstrapServers()))) {
            admin.deleteTopics(List.of(Topics.RANKINGS.name())).all().get();
            E2e.await("dtm.rankings deleted", E2e.TIMEOUT, () -> !topics(admin).contains(Topics.RANKINGS.name()));

            PrintStream original = System.out;
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            int exit;
            try {
                System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
                exit = Dtm.commandLine().execute("topics", "create", "--bootstrap-servers", cluster.bootstrapServers(),
                        "--partitions", "2");
            } finally {
                System.setOut(original);
            }
            String printed = out.toString(StandardCharsets.UTF_8);
            assertEquals(0, exit, printed);
            assertTrue(printed.lines().anyMatch(l -> l.matches("dtm\\.rankings\\s+created \\(compacted\\)")), printed);
            assertTrue(printed.lines().anyMatch(l -> l.matches("dtm\\.trials\\s+exists")), printed);

            var description = admin.describeTopics(List.of(Topics.RANKINGS.name())).allTopicNames().get().get(Topics.RANKINGS.name());
            assertEquals(2, description.partitions().size());
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, Topics.RANKINGS.name());
            assertEquals(TopicConfig.CLEANUP_POLICY_COMPACT, admin.describeConfigs(List.of(resource)).all().get()
                    .get(resource).get(TopicConfig.CLEANUP_POLICY_CONFIG).value());
        }
    }

    @Test
    void aStateTopicThatIsNotCompactedFailsTheCommand() throws Exception {
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             Admin admin = Admin.create(Map.of("bootstrap.servers", cluster.bootstrapServers()))) {
            admin.deleteTopics(List.of(Topics.RANKINGS.name())).all().get();
            E2e.await("dtm.rankings deleted", E2e.TIMEOUT, () -> !topics(admin).contains(Topics.RANKINGS.name()));
            // as Kafka would auto-create it
            admin.createTopics(List.of(new NewTopic(Topics.RANKINGS.name(), 1, (short) 1))).all().get();

            PrintStream original = System.err;
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int exit;
            try {
                System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
                exit = Dtm.commandLine().execute("topics", "create", "--bootstrap-servers", cluster.bootstrapServers());
            } finally {
                System.setErr(original);
            }
            String printed = err.toString(StandardCharsets.UTF_8);
            assertEquals(1, exit, printed);
            assertTrue(printed.contains("dtm.rankings has cleanup.policy=delete but must be compacted"), printed);
        }
    }

    private static java.util.Set<String> topics(Admin admin) {
        try {
            return admin.listTopics().names().get();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
