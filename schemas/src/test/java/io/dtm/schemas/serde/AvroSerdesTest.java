package io.dtm.schemas.serde;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.registry.IncompatibleSchemaException;
import io.dtm.schemas.registry.SchemaRegistryCore;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.apache.avro.SchemaBuilder;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serde;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class AvroSerdesTest {

    private static final String TOPIC = "dtm.divergences";

    private final SchemaRegistryCore registry = new SchemaRegistryCore();

    static Stream<Class<? extends SpecificRecord>> recordTypes() {
        return SampleRecords.all().keySet().stream();
    }

    @ParameterizedTest
    @MethodSource("recordTypes")
    <T extends SpecificRecord> void everyGeneratedRecordRoundTrips(Class<T> type) {
        T sample = type.cast(SampleRecords.all().get(type));
        Serde<T> serde = AvroSerdes.serde(type, registry);
        String topic = "topic-" + type.getSimpleName();

        byte[] bytes = serde.serializer().serialize(topic, sample);
        T back = serde.deserializer().deserialize(topic, bytes);

        assertEquals(sample, back);
        assertEquals(List.of(1), registry.versions(topic + "-value"));
    }

    @Test
    void samplesCoverEveryRecordSchemaInTheSourceTree() throws IOException {
        ObjectMapper json = new ObjectMapper();
        Set<String> records;
        try (Stream<Path> files = Files.list(Path.of("src/main/avro"))) {
            records = files.filter(p -> p.toString().endsWith(".avsc")).map(p -> {
                try {
                    return json.readTree(p.toFile());
                } catch (IOException e) {
                    throw new IllegalStateException(p.toString(), e);
                }
            }).filter(n -> n.path("type").asText().equals("record"))
                    .map(n -> n.path("namespace").asText() + "." + n.path("name").asText())
                    .collect(Collectors.toSet());
        }
        Set<String> sampled = SampleRecords.all().keySet().stream().map(Class::getName).collect(Collectors.toSet());
        assertEquals(records, sampled);
    }

    @Test
    void wireBytesStartWithMagicByteAndTheRegisteredId() {
        // Take id 1 with another schema so that a hard-coded 1 in the header would not pass.
        registry.register("other-value", ScheduleEntry.getClassSchema());
        Serde<DivergenceResult> serde = AvroSerdes.serde(DivergenceResult.class, registry);

        byte[] bytes = serde.serializer().serialize(TOPIC, SampleRecords.DIVERGENCE);

        int registered = registry.latest(TOPIC + "-value").orElseThrow().id();
        assertEquals(2, registered);
        assertEquals(0, bytes[0]);
        assertEquals(registered, ByteBuffer.wrap(bytes, 1, 4).getInt());
        assertEquals(registered, WireFormat.schemaId(bytes));
        assertEquals(registry.getById(registered), DivergenceResult.getClassSchema());
    }

    @Test
    void nullsAndEmptyBytesPassThrough() {
        Serde<DivergenceResult> serde = AvroSerdes.serde(DivergenceResult.class, registry);
        assertNull(serde.serializer().serialize(TOPIC, null));
        assertNull(serde.deserializer().deserialize(TOPIC, null));
        assertNull(serde.deserializer().deserialize(TOPIC, new byte[0]));
        assertTrue(registry.subjects().isEmpty(), "nothing to write registers nothing");
    }

    @Test
    void recordsWrittenWithAnOlderSchemaReadWithTheCurrentClass() throws IOException {
        Schema older = withoutFields(DivergenceResult.getClassSchema(), "workerId", "elapsedMs");
        int olderId = registry.register(TOPIC + "-value", older);
        GenericRecord old = new GenericData.Record(older);
        old.put("trialId", "t-old");
        old.put("sweepId", "sweep-1");
        old.put("shard", 3);
        old.put("fdt", List.of(7, 8));
        old.put("sdt", List.of(1.0, 2.0));
        for (Schema.Field f : older.getFields()) {
            if (old.get(f.name()) == null && f.hasDefaultValue()) {
                old.put(f.name(), GenericData.get().getDefaultValue(f));
            }
        }
        byte[] bytes = genericWireBytes(olderId, old);

        Serde<DivergenceResult> serde = AvroSerdes.serde(DivergenceResult.class, registry);
        DivergenceResult read = serde.deserializer().deserialize(TOPIC, bytes);

        assertEquals("t-old", read.getTrialId());
        assertEquals(3, read.getShard());
        assertEquals(List.of(7, 8), read.getFdt());
        assertEquals("", read.getWorkerId(), "a field the writer lacked takes the reader's default");
        assertEquals(0L, read.getElapsedMs());

        // The current class evolves the subject to version 2, and new bytes carry the new id.
        byte[] current = serde.serializer().serialize(TOPIC, SampleRecords.DIVERGENCE);
        assertEquals(List.of(1, 2), registry.versions(TOPIC + "-value"));
        assertNotEquals(olderId, WireFormat.schemaId(current));
        assertEquals(SampleRecords.DIVERGENCE, serde.deserializer().deserialize(TOPIC, current));
    }

    @Test
    void jsonIsNotWireFormat() {
        byte[] json = "{\"trialId\":\"t\"}".getBytes(StandardCharsets.UTF_8);
        SerializationException e = assertThrows(SerializationException.class,
                () -> AvroSerdes.deserializer(DivergenceResult.class, registry).deserialize(TOPIC, json));
        assertEquals("not in Confluent wire format: first byte 0x7b, expected 0x00", e.getMessage());
    }

    @Test
    void bytesShorterThanTheHeaderAreRejected() {
        SerializationException e = assertThrows(SerializationException.class,
                () -> AvroSerdes.deserializer(DivergenceResult.class, registry).deserialize(TOPIC, new byte[] {0, 0}));
        assertTrue(e.getMessage().startsWith("not in Confluent wire format: 2 bytes"), e.getMessage());
    }

    @Test
    void anUnknownSchemaIdIsNamed() {
        byte[] bytes = concat(WireFormat.header(42), new byte[] {2, 'x'});
        SerializationException e = assertThrows(SerializationException.class,
                () -> AvroSerdes.deserializer(DivergenceResult.class, registry).deserialize(TOPIC, bytes));
        assertTrue(e.getMessage().startsWith("unknown schema id 42"), e.getMessage());
    }

    @Test
    void corruptPayloadSaysWhatItFailedToDecodeAs() {
        int id = registry.register(TOPIC + "-value", DivergenceResult.getClassSchema());
        byte[] bytes = concat(WireFormat.header(id), new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, 1});
        SerializationException e = assertThrows(SerializationException.class,
                () -> AvroSerdes.deserializer(DivergenceResult.class, registry).deserialize(TOPIC, bytes));
        assertTrue(e.getMessage().startsWith("bytes do not decode as io.dtm.schemas.avro.DivergenceResult: "),
                e.getMessage());
    }

    @Test
    void aRecordOfAnotherTypeDoesNotDecode() {
        byte[] entry = AvroSerdes.serializer(ScheduleEntry.class, registry).serialize(TOPIC, SampleRecords.ENTRY);
        SerializationException e = assertThrows(SerializationException.class,
                () -> AvroSerdes.deserializer(DivergenceResult.class, registry).deserialize(TOPIC, entry));
        assertTrue(e.getMessage().startsWith("bytes do not decode as io.dtm.schemas.avro.DivergenceResult: "),
                e.getMessage());
    }

    @Test
    void trailingBytesAreNotSilentlyIgnored() {
        byte[] valid = AvroSerdes.serializer(ScheduleEntry.class, registry).serialize(TOPIC, SampleRecords.ENTRY);
        byte[] padded = concat(valid, new byte[] {0, 0});
        SerializationException e = assertThrows(SerializationException.class,
                () -> AvroSerdes.deserializer(ScheduleEntry.class, registry).deserialize(TOPIC, padded));
        assertTrue(e.getMessage().contains("trailing bytes"), e.getMessage());
    }

    @Test
    void serializerReportsARefusedRegistration() {
        Schema incompatible = SchemaBuilder.record("ScheduleEntry").namespace("io.dtm.schemas.avro").fields()
                .requiredLong("component").endRecord();
        registry.register(TOPIC + "-value", incompatible);
        SerializationException e = assertThrows(SerializationException.class,
                () -> AvroSerdes.serializer(ScheduleEntry.class, registry).serialize(TOPIC, SampleRecords.ENTRY));
        assertTrue(e.getMessage().contains("subject '" + TOPIC + "-value'"), e.getMessage());
        assertTrue(e.getCause() instanceof IncompatibleSchemaException, String.valueOf(e.getCause()));
    }

    @Test
    void serializerRegistersOncePerTopic() {
        CountingRegistry counting = new CountingRegistry(registry);
        Serde<ScheduleEntry> serde = AvroSerdes.serde(ScheduleEntry.class, counting);
        for (int i = 0; i < 5; i++) {
            serde.serializer().serialize("a", SampleRecords.ENTRY);
            serde.serializer().serialize("b", SampleRecords.ENTRY);
        }
        assertEquals(2, counting.registrations);
        assertEquals(registry.latest("a-value").orElseThrow().id(), registry.latest("b-value").orElseThrow().id(),
                "the same schema has one id under every subject");
    }

    @Test
    void writerSchemasAreFetchedOncePerId() {
        CountingRegistry counting = new CountingRegistry(registry);
        Serde<DivergenceResult> serde = AvroSerdes.serde(DivergenceResult.class, counting);
        byte[] bytes = serde.serializer().serialize(TOPIC, SampleRecords.DIVERGENCE);
        for (int i = 0; i < 5; i++) {
            assertEquals(SampleRecords.DIVERGENCE, serde.deserializer().deserialize(TOPIC, bytes));
        }
        assertEquals(1, counting.lookups);
    }

    /**
     * Avro reads its trusted-package property once, when its class validator loads, and touching a generated class
     * loads it. This runs a fresh JVM without the property that Surefire sets, where a generated class is used before
     * {@link AvroSerdes}, and checks a record still decodes.
     */
    @Test
    void decodesInAJvmThatTouchedAvroBeforeTheSerdes() throws Exception {
        Process java = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), UntrustedJvmMain.class.getName())
                .redirectErrorStream(true).start();
        String output = new String(java.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, java.waitFor(), output);
        assertEquals(UntrustedJvmMain.OK, output.strip());
    }

    private static Schema withoutFields(Schema schema, String... dropped) {
        Set<String> drop = Set.of(dropped);
        List<Schema.Field> kept = schema.getFields().stream().filter(f -> !drop.contains(f.name()))
                .map(f -> new Schema.Field(f, f.schema())).toList();
        assertEquals(schema.getFields().size() - dropped.length, kept.size());
        return Schema.createRecord(schema.getName(), schema.getDoc(), schema.getNamespace(), false, kept);
    }

    private static byte[] genericWireBytes(int id, GenericRecord record) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(WireFormat.header(id));
        BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(record.getSchema()).write(record, encoder);
        encoder.flush();
        return out.toByteArray();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
