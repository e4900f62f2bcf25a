package io.dtm.schemas.registry;

import static io.dtm.schemas.registry.SchemaRegistryCoreTest.ADDS_REQUIRED;
import static io.dtm.schemas.registry.SchemaRegistryCoreTest.V1;
import static io.dtm.schemas.registry.SchemaRegistryCoreTest.V2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.DivergenceResult;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The Kafka-backed registry against a real KRaft broker: REST behaviour, and ids that survive a restart. */
class KafkaSchemaRegistryServerTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static KafkaClusterTestKit cluster;

    @BeforeAll
    static void startKafka() throws Exception {
        cluster = new KafkaClusterTestKit.Builder(new TestKitNodes.Builder()
                .setCombined(true).setNumBrokerNodes(1).setNumControllerNodes(1).build())
                .setConfigProp("offsets.topic.replication.factor", "1")
                .build();
        cluster.format();
        cluster.startup();
        cluster.waitForReadyBrokers();
    }

    @AfterAll
    static void stopKafka() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void registrationsSurviveARestartOnTheSameCluster() throws Exception {
        Map<String, Object> kafka = Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapServers());
        String subject = Topics.DIVERGENCES.name() + "-value";
        int v1;
        int v2;
        int other;
        try (KafkaSchemaRegistryServer registry = KafkaSchemaRegistryServer.start(kafka, null, 0)) {
            HttpSchemaRegistryClient client = new HttpSchemaRegistryClient(registry.url());
            v1 = client.register(subject, V1);
            v2 = client.register(subject, V2);
            other = client.register(Topics.TRIALS.name() + "-value", DivergenceResult.getClassSchema());

            HttpResponse<String> refused = post(registry.url() + "/subjects/" + subject + "/versions",
                    JSON.writeValueAsString(Map.of("schema", ADDS_REQUIRED.toString())));
            assertEquals(409, refused.statusCode(), refused.body());
            JsonNode error = JSON.readTree(refused.body());
            assertEquals(409, error.get("error_code").intValue());
            assertTrue(error.get("message").textValue().contains("subject '" + subject + "'"), refused.body());
            assertEquals(List.of(1, 2), client.versions(subject));
        }
        assertEquals(List.of(1, 2, 3), List.of(v1, v2, other));
        assertStoreTopicIsCompacted();

        try (KafkaSchemaRegistryServer restarted = KafkaSchemaRegistryServer.start(kafka, "127.0.0.1", 0)) {
            HttpSchemaRegistryClient client = new HttpSchemaRegistryClient(restarted.url());
            assertEquals(List.of(1, 2), client.versions(subject));
            assertEquals(new RegisteredSchema(subject, 2, v2, V2), client.latest(subject).orElseThrow());
            assertEquals(v1, client.register(subject, V1), "the restarted registry knows V1's id");

            JsonNode byId = JSON.readTree(get(restarted.url() + "/schemas/ids/" + v1).body());
            assertEquals(V1.toString(), byId.get("schema").textValue());
            JsonNode version1 = JSON.readTree(get(restarted.url() + "/subjects/" + subject + "/versions/1").body());
            assertEquals(v1, version1.get("id").intValue());

            int next = client.register("fresh-value", ADDS_REQUIRED);
            assertEquals(4, next, "new ids continue after the replayed ones");
        }
    }

    private static void assertStoreTopicIsCompacted() throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG,
                cluster.bootstrapServers()))) {
            TopicDescription description = admin.describeTopics(List.of(Topics.SCHEMAS.name())).allTopicNames().get()
                    .get(Topics.SCHEMAS.name());
            assertEquals(1, description.partitions().size());
            ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, Topics.SCHEMAS.name());
            assertEquals(TopicConfig.CLEANUP_POLICY_COMPACT, admin.describeConfigs(List.of(topic)).all().get()
                    .get(topic).get(TopicConfig.CLEANUP_POLICY_CONFIG).value());
        }
    }

    private static HttpResponse<String> post(String url, String body) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url))
                        .header("Content-Type", HttpSchemaRegistryClient.CONTENT_TYPE)
                        .POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> get(String url) throws Exception {
        HttpResponse<String> response = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url))
                .GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, response.statusCode(), response.body());
        return response;
    }
}
