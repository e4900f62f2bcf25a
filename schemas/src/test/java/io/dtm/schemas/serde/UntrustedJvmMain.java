package io.dtm.schemas.serde;

import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.registry.SchemaRegistryCore;
import org.apache.kafka.common.serialization.Serde;

/** Run by {@link AvroSerdesTest} in a JVM of its own; see there. */
public final class UntrustedJvmMain {
    static final String OK = "decoded";

    public static void main(String[] args) {
        if (System.getProperty("org.apache.avro.SERIALIZABLE_PACKAGES") != null) {
            throw new IllegalStateException("run without org.apache.avro.SERIALIZABLE_PACKAGES");
        }
        DivergenceResult first = SampleRecords.DIVERGENCE;
        if (first.getSchema().getField("trialId") == null) {
            throw new IllegalStateException("unexpected schema");
        }
        Serde<DivergenceResult> serde = AvroSerdes.serde(DivergenceResult.class, new SchemaRegistryCore());
        byte[] bytes = serde.serializer().serialize("t", first);
        if (!first.equals(serde.deserializer().deserialize("t", bytes))) {
            throw new IllegalStateException("round trip changed the record");
        }
        System.out.println(OK);
    }
}
