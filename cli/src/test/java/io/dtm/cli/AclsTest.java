package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.aggregator.AggregatorApp;
import io.dtm.planner.TrialPlanner;
import io.dtm.aggregator.ScheduleView;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.KafkaSchemaRegistryServer;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.registry.SchemaRegistryClients;
import io.dtm.schemas.serde.AvroSerdes;
import io.dtm.worker.TrialWorker;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8, item 7: {@code dtm acls create} on a broker with SASL and Kafka's authorizer. Each principal runs its part
 * of a real sweep with exactly these ACLs, and can write nothing it should not: only producers (and the aggregator's
 * later rounds) write sweeps and trials, only workers write results and baselines.
 */
class AclsTest {

    private static final Map<String, String> USERS = Map.of("admin", "admin-secret", "sweeper", "sweeper-secret",
            "worker", "worker-secret", "aggregator", "aggregator-secret", "intruder", "intruder-secret");

    @Test
    void eachPrincipalDoesItsPartOfASweepAndNothingElse(@TempDir Path dir) throws Exception {
        try (SecuredBroker broker = new SecuredBroker(dir.resolve("kraft"), USERS)) {
            Map<String, Object> admin = as(broker, "admin");
            try (Admin a = Admin.create(admin)) {
                E2e.await("the broker answers", E2e.TIMEOUT, () -> {
                    try {
                        return !a.describeCluster().nodes().get(5, TimeUnit.SECONDS).isEmpty();
                    } catch (Exception e) {
                        return false;
                    }
                });
            }
            Topics.create(admin, 2, (short) 1);
            Path adminConfig = dir.resolve("admin.properties");
            StringBuilder text = new StringBuilder();
            admin.forEach((k, v) -> text.append(k).append('=').append(v.toString().replace("\"", "\\\"")).append('\n'));
            Files.writeString(adminConfig, text);
            EngineCommandsTest.Run run = EngineCommandsTest.dtm("acls", "create", "--bootstrap-servers",
                    broker.bootstrapServers(), "--client-config", adminConfig.toString(), "--producer", "User:sweeper",
                    "--worker", "User:worker", "--aggregator", "User:aggregator");
            assertEquals(0, run.exit(), run.err());
            assertTrue(run.out().contains("User:worker") && run.out().contains("WRITE      TOPIC dtm.divergences"),
                    run.out());

            try (KafkaSchemaRegistryServer registryServer = KafkaSchemaRegistryServer.start(admin, "127.0.0.1", 0)) {
                SchemaRegistryClient registry = SchemaRegistryClients.connect(registryServer.url());
                SweepRequest sweep = E2e.sweep("acl-sweep", E2e.prompts(E2e.PROMPTS), 1);
                try (AggregatorApp aggregator = E2e.startAggregator(AggregatorApp.Config
                        .builder(broker.bootstrapServers(), registry).clientProps(as(broker, "aggregator"))
                        .applicationId(AggregatorApp.DEFAULT_APPLICATION_ID).stateDir(dir.resolve("streams"))
                        .httpBindHost("127.0.0.1").httpAdvertisedHost("127.0.0.1").build());
                     E2e.RunningWorker worker = new E2e.RunningWorker(new TrialWorker.Config(as(broker, "worker"),
                             registry, "dtm-workers", "acl-worker", null, E2e.cpu(), Duration.ofMinutes(10), 4))) {
                    new SweepPublisher(as(broker, "sweeper"), registry).publish(sweep);
                    ScheduleView schedule = E2e.awaitFinished(aggregator, sweep.getSweepId(), E2e.TIMEOUT);
                    assertEquals("rounds", schedule.stopReason(), schedule.toString());
                    assertTrue(worker.alive() && worker.worker.health().up(), worker.worker.health().toString());
                }
                resultsNotAllowed(broker, registry);
            }

            denied(broker, "worker", Topics.SWEEPS.name());
            denied(broker, "worker", Topics.TRIALS.name());
            denied(broker, "sweeper", Topics.DIVERGENCES.name());
            denied(broker, "sweeper", Topics.BASELINES.name());
            denied(broker, "aggregator", Topics.BASELINES.name());
            denied(broker, "aggregator", Topics.DIVERGENCES.name());
            denied(broker, "aggregator", Topics.SWEEPS.name());
            denied(broker, "intruder", Topics.TRIALS.name());
        }
    }

    /**
     * A worker that may no longer write results dead-letters each trial on its own with the reason, although the
     * trials came in one poll and would have shared a transaction, and goes on.
     */
    private static void resultsNotAllowed(SecuredBroker broker, SchemaRegistryClient registry) throws Exception {
        try (Admin a = Admin.create(as(broker, "admin"))) {
            a.deleteAcls(List.of(new AclBindingFilter(new ResourcePatternFilter(ResourceType.TOPIC,
                    Topics.DIVERGENCES.name(), PatternType.LITERAL), new AccessControlEntryFilter("User:worker", null,
                    AclOperation.WRITE, AclPermissionType.ALLOW)))).all().get();
        }
        List<ComponentTrial> trials = TrialPlanner.candidates(E2e.sweep("denied-sweep"), 0, List.of()).subList(0, 4);
        for (ComponentTrial t : trials) {
            E2e.produceRaw(as(broker, "admin"), Topics.TRIALS.name(), Topics.shardKey(t.getTrialId(), t.getShard()),
                    E2e.encode(registry, Topics.TRIALS.name(), t));
        }
        List<String> keys = trials.stream().map(t -> Topics.shardKey(t.getTrialId(), t.getShard())).sorted().toList();
        try (E2e.RunningWorker worker = new E2e.RunningWorker(new TrialWorker.Config(as(broker, "worker"), registry,
                "dtm-workers", "denied-worker", null, E2e.cpu(), Duration.ofMinutes(10), 4))) {
            E2e.await("every trial is dead-lettered", E2e.TIMEOUT, () -> worker.worker.processed() == trials.size());
            Map<String, DeadLetter> letters = E2e.latestByKey(E2e.readAll(as(broker, "admin"),
                    Topics.DEAD_LETTERS.name(), AvroSerdes.deserializer(DeadLetter.class, registry)));
            assertEquals(keys, List.copyOf(letters.keySet()));
            letters.values().forEach(l -> assertTrue(l.getReason().contains("cannot write the result")
                    && l.getReason().contains("Authorization"), l.getReason()));
            assertTrue(worker.alive() && worker.worker.health().up(), worker.worker.health().toString());
        }
    }

    private static Map<String, Object> as(SecuredBroker broker, String user) {
        return broker.client(user, USERS.get(user));
    }

    private static void denied(SecuredBroker broker, String user, String topic) {
        Map<String, Object> props = new HashMap<>(as(broker, user));
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10_000);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props, new StringSerializer(),
                new StringSerializer())) {
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, "k", "v")).get(20, TimeUnit.SECONDS),
                    user + " must not write " + topic);
            assertInstanceOf(TopicAuthorizationException.class, e.getCause(), user + " on " + topic + ": " + e);
        }
    }
}
