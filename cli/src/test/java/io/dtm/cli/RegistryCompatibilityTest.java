package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.local.EmbeddedCluster;
import io.dtm.planner.TrialPlanner;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.HttpSchemaRegistryClient;
import io.dtm.schemas.registry.IncompatibleSchemaException;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import io.dtm.schemas.serde.WireFormat;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/**
 * Schema evolution through the whole serde path, on the embedded cluster's Kafka-backed registry. The REST-level
 * 409 for an incompatible schema is covered in general by {@code KafkaSchemaRegistryServerTest}; here it is the
 * pipeline's own subject {@code dtm.divergences-value}, as registered by a real worker, that is evolved, and records
 * written with the evolved schema flow through the running aggregator (an upgraded worker beside old services).
 */
class RegistryCompatibilityTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SUBJECT = AvroSerdes.valueSubject(Topics.DIVERGENCES.name());

    @Test
    void theDivergenceSubjectEvolvesCompatiblyAndMixedWritersKeepThePipelineWorking() throws Exception {
        SweepRequest v1Sweep = E2e.sweep("compat-v1", E2e.prompts(E2e.PROMPTS), 1);
        SweepRequest v2Sweep = E2e.renamed(v1Sweep, "compat-v2");
        Path temp = Files.createTempDirectory("dtm-compat");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.Reference reference = new E2e.Reference(v1Sweep.getPrompts());
             AggregatorApp aggregator = E2e.startAggregator(cluster, E2e.registry(cluster), "dtm-aggregator-compat",
                     temp.resolve("streams"))) {
            SchemaRegistryClient registry = E2e.registry(cluster);
            String bootstrap = cluster.bootstrapServers();

            // 1. a sweep with today's worker registers the subject (version 1)
            ScheduleView v1Schedule;
            try (E2e.RunningWorker worker = new E2e.RunningWorker(cluster, registry, "compat-workers", "old-1")) {
                new SweepPublisher(E2e.clientProps(cluster), registry).publish(v1Sweep);
                v1Schedule = E2e.awaitFinished(aggregator, v1Sweep.getSweepId(), E2e.TIMEOUT);
            }
            assertEquals(List.of(1), registry.versions(SUBJECT));
            int v1Id = registry.latest(SUBJECT).orElseThrow().id();
            assertEquals(SchemaTextOf.canonical(DivergenceResult.getClassSchema()),
                    SchemaTextOf.canonical(registry.getById(v1Id)));

            // 2. a new field without a default cannot read version-1 data: refused, over HTTP and through the client
            Schema incompatible = withField(DivergenceResult.getClassSchema(), "gpuModel", null);
            HttpResponse<String> check = post(cluster.registryUrl() + "/compatibility/subjects/" + encode(SUBJECT)
                    + "/versions/latest", incompatible);
            assertEquals(200, check.statusCode(), check.body());
            assertFalse(JSON.readTree(check.body()).get("is_compatible").booleanValue(), check.body());
            HttpResponse<String> refused = post(cluster.registryUrl() + "/subjects/" + encode(SUBJECT) + "/versions",
                    incompatible);
            assertEquals(409, refused.statusCode(), refused.body());
            JsonNode error = JSON.readTree(refused.body());
            assertEquals(409, error.get("error_code").intValue(), refused.body());
            IncompatibleSchemaException thrown = assertThrows(IncompatibleSchemaException.class,
                    () -> new HttpSchemaRegistryClient(cluster.registryUrl()).register(SUBJECT, incompatible));
            assertEquals(SUBJECT, thrown.subject());
            assertEquals(List.of(1), registry.versions(SUBJECT), "nothing was registered");

            // 3. a new field with a default is accepted as version 2
            Schema v2 = withField(DivergenceResult.getClassSchema(), "device", "cpu");
            assertTrue(registry.testCompatibility(SUBJECT, v2));
            int v2Id = new HttpSchemaRegistryClient(cluster.registryUrl()).register(SUBJECT, v2);
            assertNotEquals(v1Id, v2Id);
            assertEquals(List.of(1, 2), registry.versions(SUBJECT));
            HttpResponse<String> versions = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                    cluster.registryUrl() + "/subjects/" + encode(SUBJECT) + "/versions")).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals("[1,2]", versions.body().replace(" ", ""));

            // 4. an upgraded reader reads what the old worker wrote (BACKWARD): the new field takes its default
            List<ConsumerRecord<String, byte[]>> written = E2e.readAll(bootstrap, Topics.DIVERGENCES.name());
            assertEquals(2 * (6 + 1), written.size());
            for (ConsumerRecord<String, byte[]> r : written) {
                assertEquals(v1Id, WireFormat.schemaId(r.value()));
                GenericRecord upgraded = new GenericDatumReader<GenericRecord>(registry.getById(v1Id), v2)
                        .read(null, DecoderFactory.get().binaryDecoder(r.value(), WireFormat.HEADER_LENGTH,
                                r.value().length - WireFormat.HEADER_LENGTH, null));
                DivergenceResult old = AvroSerdes.deserializer(DivergenceResult.class, registry)
                        .deserialize(r.topic(), r.value());
                assertEquals("cpu", upgraded.get("device").toString());
                assertEquals(old.getFdt(), upgraded.get("fdt"));
                assertEquals(old.getTrialId(), upgraded.get("trialId").toString());
            }

            // 5. an upgraded worker writes round 0 of the next sweep with version 2; the old aggregator ranks it
            new SweepPublisher(E2e.clientProps(cluster), registry).publish(v2Sweep);
            for (ComponentTrial shard : TrialPlanner.candidates(v2Sweep, 0, List.of())) {
                byte[] bytes = encodeV2(v2, v2Id, reference.result(shard, "upgraded-worker"));
                E2e.produceRaw(bootstrap, Topics.DIVERGENCES.name(), Topics.shardKey(shard.getTrialId(), shard.getShard()),
                        bytes);
            }
            RankingView v2Round0 = E2e.awaitValue("the v2-written round is decided", E2e.TIMEOUT, () -> aggregator
                    .queries().ranking(v2Sweep.getSweepId(), java.util.OptionalInt.of(0)).filter(RankingView::decided));
            RankingView v1Round0 = E2e.ranking(aggregator, v1Sweep.getSweepId(), 0);
            assertEquals(v1Round0.entries(), v2Round0.entries(), "the same numbers, whichever schema wrote them");
            for (RankingView.Entry e : v2Round0.entries()) {
                PipelineEndToEndTest.assertMatches(reference.candidate(e.component(), e.compression()), e);
            }

            // 6. an old worker (version-1 writer) measures the schedule: both versions in one sweep
            try (E2e.RunningWorker worker = new E2e.RunningWorker(cluster, registry, "compat-workers", "old-2")) {
                ScheduleView v2Schedule = E2e.awaitFinished(aggregator, v2Sweep.getSweepId(), E2e.TIMEOUT);
                assertEquals(v1Schedule.steps(), v2Schedule.steps());
                assertTrue(worker.alive());
            }
            Map<Integer, Long> idsOfV2Sweep = E2e.readAll(bootstrap, Topics.DIVERGENCES.name()).stream()
                    .filter(r -> AvroSerdes.deserializer(DivergenceResult.class, registry)
                            .deserialize(r.topic(), r.value()).getSweepId().equals(v2Sweep.getSweepId()))
                    .collect(Collectors.groupingBy(r -> WireFormat.schemaId(r.value()), Collectors.counting()));
            assertTrue(idsOfV2Sweep.get(v2Id) >= 12, idsOfV2Sweep.toString());
            assertTrue(idsOfV2Sweep.get(v1Id) >= 2, "the measure came from the old worker: " + idsOfV2Sweep);
            assertEquals(List.of(1, 2), registry.versions(SUBJECT), "the old writer re-used version 1's id");
        } finally {
            E2e.deleteTree(temp);
        }
    }

    /** {@code result} written with the evolved schema: every version-1 field plus {@code device}, in wire format. */
    private static byte[] encodeV2(Schema v2, int v2Id, DivergenceResult result) throws Exception {
        GenericRecord record = new GenericData.Record(v2);
        for (Schema.Field f : DivergenceResult.getClassSchema().getFields()) {
            Object value = result.get(f.pos());
            if (value instanceof Enum<?> symbol) {
                value = new GenericData.EnumSymbol(f.schema(), symbol.name());
            }
            record.put(f.name(), value);
        }
        record.put("device", "gpu-v2");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(WireFormat.header(v2Id));
        BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(v2).write(record, encoder);
        encoder.flush();
        return out.toByteArray();
    }

    /** {@code base} with one more string field; {@code defaultValue} null: a required field without a default. */
    private static Schema withField(Schema base, String name, String defaultValue) {
        List<Schema.Field> fields = new ArrayList<>();
        for (Schema.Field f : base.getFields()) {
            fields.add(new Schema.Field(f, f.schema()));
        }
        fields.add(defaultValue == null
                ? new Schema.Field(name, Schema.create(Schema.Type.STRING), "added in a later version")
                : new Schema.Field(name, Schema.create(Schema.Type.STRING), "added in a later version", defaultValue));
        return Schema.createRecord(base.getName(), base.getDoc(), base.getNamespace(), false, fields);
    }

    private static HttpResponse<String> post(String url, Schema schema) throws Exception {
        String body = JSON.writeValueAsString(Map.of("schema", schema.toString()));
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url))
                        .header("Content-Type", HttpSchemaRegistryClient.CONTENT_TYPE)
                        .POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static String encode(String subject) {
        return URLEncoder.encode(subject, StandardCharsets.UTF_8);
    }

    /** Parsing canonical form, so a schema read back from the registry compares equal to the class's. */
    private static final class SchemaTextOf {
        static String canonical(Schema s) {
            return org.apache.avro.SchemaNormalization.toParsingForm(s);
        }
    }
}
