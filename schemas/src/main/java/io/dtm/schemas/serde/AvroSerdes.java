package io.dtm.schemas.serde;

import io.dtm.schemas.registry.SchemaNotFoundException;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.registry.SchemaRegistryException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.apache.avro.util.ClassSecurityValidator;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Kafka serdes for the generated Avro records, in Confluent's wire format (see {@link WireFormat}) against any
 * {@link SchemaRegistryClient}, so that Confluent's tooling can read the topics and the other way round.
 *
 * <p>The serializer registers the record's schema under {@code <topic>-value} the first time it writes to a topic.
 * The deserializer decodes with the schema the bytes were written with and resolves it to the class's schema, so a
 * consumer built against a newer schema reads records written by an older producer.
 */
public final class AvroSerdes {
    private AvroSerdes() {}

    /** The package whose generated classes Avro must be allowed to instantiate. */
    static final String TRUSTED_PACKAGE = "io.dtm";
    static final String SERIALIZABLE_PACKAGES = "org.apache.avro.SERIALIZABLE_PACKAGES";

    static {
        trustDtmClasses();
    }

    /**
     * Avro 1.12 refuses to instantiate classes outside its trusted packages when reading. The system property is what
     * Avro documents, but Avro reads it once, when its class validator is first loaded, and any earlier use of a
     * generated class (its static reader) can trigger that. So the package is also added to Avro's global validator,
     * which it consults on every lookup, and the property is kept for whatever reads it later.
     */
    private static void trustDtmClasses() {
        String packages = System.getProperty(SERIALIZABLE_PACKAGES);
        if (packages == null || packages.isBlank()) {
            System.setProperty(SERIALIZABLE_PACKAGES, TRUSTED_PACKAGE);
        } else if (Arrays.stream(packages.split(",")).map(String::trim).noneMatch(TRUSTED_PACKAGE::equals)) {
            System.setProperty(SERIALIZABLE_PACKAGES, packages + "," + TRUSTED_PACKAGE);
        }
        ClassSecurityValidator.ClassSecurityPredicate previous = ClassSecurityValidator.getGlobal();
        ClassSecurityValidator.setGlobal(ClassSecurityValidator.composite(previous,
                type -> type.getName().startsWith(TRUSTED_PACKAGE + ".")));
    }

    /** The subject a topic's values are registered under (Confluent's {@code TopicNameStrategy}). */
    public static String valueSubject(String topic) {
        return topic + "-value";
    }

    /** Serializer and deserializer of {@code type}'s records, registering and looking schemas up in {@code registry}. */
    public static <T extends SpecificRecord> Serde<T> serde(Class<T> type, SchemaRegistryClient registry) {
        return Serdes.serdeFrom(serializer(type, registry), deserializer(type, registry));
    }

    public static <T extends SpecificRecord> Serializer<T> serializer(Class<T> type, SchemaRegistryClient registry) {
        return new AvroSerializer<>(type, Objects.requireNonNull(registry, "registry"));
    }

    public static <T extends SpecificRecord> Deserializer<T> deserializer(Class<T> type, SchemaRegistryClient registry) {
        return new AvroDeserializer<>(type, Objects.requireNonNull(registry, "registry"));
    }

    private static Schema schemaOf(Class<?> type) {
        Objects.requireNonNull(type, "type");
        Schema schema = SpecificData.getForClass(type).getSchema(type);
        if (schema.getType() != Schema.Type.RECORD) {
            throw new IllegalArgumentException(type.getName() + " is not a generated Avro record class");
        }
        return schema;
    }

    private static final class AvroSerializer<T extends SpecificRecord> implements Serializer<T> {
        private final Class<T> type;
        private final Schema schema;
        private final SchemaRegistryClient registry;
        private final SpecificDatumWriter<T> writer;
        private final Map<String, byte[]> headersByTopic = new ConcurrentHashMap<>();

        AvroSerializer(Class<T> type, SchemaRegistryClient registry) {
            this.type = type;
            this.schema = schemaOf(type);
            this.registry = registry;
            this.writer = new SpecificDatumWriter<>(schema, SpecificData.getForClass(type));
        }

        @Override
        public byte[] serialize(String topic, T data) {
            if (data == null) {
                return null;
            }
            byte[] header = headersByTopic.computeIfAbsent(topic, this::register);
            ByteArrayOutputStream out = new ByteArrayOutputStream(256);
            out.writeBytes(header);
            try {
                BinaryEncoder encoder = EncoderFactory.get().directBinaryEncoder(out, null);
                writer.write(data, encoder);
                encoder.flush();
            } catch (IOException | RuntimeException e) {
                throw new SerializationException("cannot serialize " + type.getName() + " for topic '" + topic
                        + "': " + e.getMessage(), e);
            }
            return out.toByteArray();
        }

        private byte[] register(String topic) {
            String subject = valueSubject(topic);
            try {
                return WireFormat.header(registry.register(subject, schema));
            } catch (SchemaRegistryException e) {
                throw new SerializationException("cannot register the schema of " + type.getName()
                        + " under subject '" + subject + "': " + e.getMessage(), e);
            }
        }
    }

    private static final class AvroDeserializer<T extends SpecificRecord> implements Deserializer<T> {
        private final Class<T> type;
        private final Schema readerSchema;
        private final SchemaRegistryClient registry;
        private final SpecificData model;
        private final Map<Integer, SpecificDatumReader<T>> readersByWriterId = new ConcurrentHashMap<>();

        AvroDeserializer(Class<T> type, SchemaRegistryClient registry) {
            this.type = type;
            this.readerSchema = schemaOf(type);
            this.registry = registry;
            this.model = SpecificData.getForClass(type);
        }

        @Override
        public T deserialize(String topic, byte[] data) {
            if (data == null || data.length == 0) {
                return null;
            }
            int id = WireFormat.schemaId(data);
            SpecificDatumReader<T> reader = readersByWriterId.computeIfAbsent(id, this::reader);
            try {
                BinaryDecoder decoder = DecoderFactory.get().binaryDecoder(data, WireFormat.HEADER_LENGTH,
                        data.length - WireFormat.HEADER_LENGTH, null);
                T record = reader.read(null, decoder);
                if (!decoder.isEnd()) {
                    throw new IOException("trailing bytes after the record written with schema id " + id);
                }
                return record;
            } catch (IOException | RuntimeException e) {
                throw new SerializationException("bytes do not decode as " + type.getName() + ": " + e, e);
            }
        }

        private SpecificDatumReader<T> reader(int id) {
            Schema writerSchema;
            try {
                writerSchema = registry.getById(id);
            } catch (SchemaNotFoundException e) {
                throw new SerializationException("unknown schema id " + id + " (not in the schema registry)", e);
            } catch (SchemaRegistryException e) {
                throw new SerializationException("cannot fetch schema id " + id + ": " + e.getMessage(), e);
            }
            return new SpecificDatumReader<>(writerSchema, readerSchema, model);
        }
    }
}
