package io.dtm.schemas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.junit.jupiter.api.Test;

/**
 * The pipeline's records stay BACKWARD compatible (what the registry enforces per subject): today's schemas read what
 * was written with the schemas before target allocation, kept under {@code avro-before-target-allocation/}, and the
 * new fields take their defaults.
 */
class SchemaEvolutionTest {

    private static final String BEFORE = "/avro-before-target-allocation/";

    @Test
    void everyTopicsValueReadsRecordsWrittenBeforeTargetAllocation() throws IOException {
        Map<String, Schema> before = parse("ScheduleEntry", "ComponentInfo", "TrialKind", "RankingEntry",
                "ComponentTrial", "DivergenceResult", "ScheduleStep", "SweepRequest");
        Map<Schema, String> current = Map.of(ComponentTrial.getClassSchema(), "ComponentTrial",
                DivergenceResult.getClassSchema(), "DivergenceResult", ScheduleStep.getClassSchema(), "ScheduleStep",
                SweepRequest.getClassSchema(), "SweepRequest");
        current.forEach((reader, name) -> assertEquals(SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE,
                SchemaCompatibility.checkReaderWriterCompatibility(reader, before.get(name)).getType(), name));
    }

    @Test
    void anOldResultReadsWithoutTextOrSchedule() throws IOException {
        Schema old = parse("ScheduleEntry", "TrialKind", "DivergenceResult").get("DivergenceResult");
        GenericRecord written = new GenericData.Record(old);
        for (Schema.Field f : old.getFields()) {
            if (f.hasDefaultValue()) {
                written.put(f.name(), GenericData.get().getDefaultValue(f));
            }
        }
        written.put("trialId", "t");
        written.put("sweepId", "s");
        written.put("kind", new GenericData.EnumSymbol(old.getField("kind").schema(), "SCHEDULE"));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(bytes, null);
        new GenericDatumWriter<GenericRecord>(old).write(written, encoder);
        encoder.flush();
        DivergenceResult read = new SpecificDatumReader<DivergenceResult>(old, DivergenceResult.getClassSchema())
                .read(null, DecoderFactory.get().binaryDecoder(bytes.toByteArray(), null));
        assertEquals(TrialKind.SCHEDULE, read.getKind());
        assertNull(read.getText());
        assertEquals(List.of(), read.getSchedule());
    }

    /** The schemas in dependency order, each named type defined once. */
    private static Map<String, Schema> parse(String... names) throws IOException {
        Schema.Parser parser = new Schema.Parser();
        Map<String, Schema> schemas = new HashMap<>();
        for (String name : names) {
            try (InputStream in = SchemaEvolutionTest.class.getResourceAsStream(BEFORE + name + ".avsc")) {
                schemas.put(name, parser.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8)));
            }
        }
        return schemas;
    }
}
