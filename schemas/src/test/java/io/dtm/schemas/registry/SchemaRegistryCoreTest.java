package io.dtm.schemas.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.schemas.avro.DivergenceResult;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.avro.Schema;
import org.apache.avro.SchemaBuilder;
import org.junit.jupiter.api.Test;

class SchemaRegistryCoreTest {

    static final Schema V1 = SchemaBuilder.record("Trial").namespace("test").fields()
            .requiredString("id")
            .endRecord();
    /** V1 plus a field with a default: a reader of V2 fills it in for V1 data. */
    static final Schema V2 = SchemaBuilder.record("Trial").namespace("test").fields()
            .requiredString("id")
            .name("shard").type().intType().intDefault(0)
            .endRecord();
    /** V2 plus a field without a default: a reader of V3 has nothing to fill it with for V2 data. */
    static final Schema ADDS_REQUIRED = SchemaBuilder.record("Trial").namespace("test").fields()
            .requiredString("id")
            .name("shard").type().intType().intDefault(0)
            .requiredString("worker")
            .endRecord();
    /** V2 with {@code id} turned into a long: a string cannot be read as a long. */
    static final Schema CHANGES_TYPE = SchemaBuilder.record("Trial").namespace("test").fields()
            .requiredLong("id")
            .name("shard").type().intType().intDefault(0)
            .endRecord();

    private final SchemaRegistryCore registry = new SchemaRegistryCore();

    @Test
    void idsAreGlobalAndIncreasingAndVersionsCountPerSubject() {
        assertEquals(1, registry.register("a-value", V1));
        assertEquals(2, registry.register("a-value", V2));
        assertEquals(3, registry.register("b-value", DivergenceResult.getClassSchema()));
        assertEquals(List.of(1, 2), registry.versions("a-value"));
        assertEquals(List.of(1), registry.versions("b-value"));
        assertEquals(new RegisteredSchema("a-value", 2, 2, V2), registry.latest("a-value").orElseThrow());
        assertEquals(List.of("a-value", "b-value"), registry.subjects());
        assertEquals(V1, registry.getById(1));
    }

    @Test
    void registeringTheSameSchemaAgainReturnsItsId() {
        int id = registry.register("a-value", V1);
        registry.register("a-value", V2);
        assertEquals(id, registry.register("a-value", new Schema.Parser().parse(V1.toString())),
                "an older version is found too, without a compatibility check");
        assertEquals(List.of(1, 2), registry.versions("a-value"));
    }

    @Test
    void theSameSchemaHasOneIdAcrossSubjects() {
        int id = registry.register("a-value", V1);
        assertEquals(id, registry.register("b-value", V1));
        assertEquals(List.of(1), registry.versions("b-value"));
        assertEquals(2, registry.register("c-value", V2), "the next new schema still gets a fresh id");
    }

    @Test
    void addingAFieldWithoutDefaultIsRejected() {
        registry.register("a-value", V1);
        registry.register("a-value", V2);
        IncompatibleSchemaException e = assertThrows(IncompatibleSchemaException.class,
                () -> registry.register("a-value", ADDS_REQUIRED));
        assertEquals("a-value", e.subject());
        assertEquals(409, e.errorCode());
        assertTrue(e.getMessage().contains("subject 'a-value'"), e.getMessage());
        assertTrue(e.getMessage().contains("version 2"), e.getMessage());
        assertTrue(e.getMessage().contains("READER_FIELD_MISSING_DEFAULT_VALUE"), e.getMessage());
        assertTrue(e.getMessage().contains("worker"), e.getMessage());
        assertEquals(List.of(1, 2), registry.versions("a-value"));
    }

    @Test
    void changingAFieldTypeIsRejected() {
        registry.register("a-value", V2);
        IncompatibleSchemaException e = assertThrows(IncompatibleSchemaException.class,
                () -> registry.register("a-value", CHANGES_TYPE));
        assertTrue(e.getMessage().contains("TYPE_MISMATCH"), e.getMessage());
        assertTrue(e.getMessage().contains("/fields/0/type"), e.getMessage());
    }

    @Test
    void compatibilityIsBackwardAgainstTheLatestVersionOnly() {
        assertTrue(registry.testCompatibility("new-subject", ADDS_REQUIRED), "anything is compatible with nothing");
        registry.register("a-value", V2);
        assertTrue(registry.testCompatibility("a-value", V1), "dropping a field: a V1 reader ignores 'shard'");
        assertFalse(registry.testCompatibility("a-value", ADDS_REQUIRED));
        assertFalse(registry.testCompatibility("a-value", CHANGES_TYPE));
        assertTrue(registry.compatibilityProblem("a-value", CHANGES_TYPE).orElseThrow().contains("TYPE_MISMATCH"));
        assertEquals(Optional.empty(), registry.compatibilityProblem("a-value", V2));

        registry.register("a-value", V1);
        assertTrue(registry.testCompatibility("a-value", V2),
                "only the latest (V1) counts: V2 adds a field with a default");
    }

    @Test
    void typePromotionIsBackwardCompatible() {
        Schema intField = SchemaBuilder.record("R").fields().requiredInt("n").endRecord();
        Schema longField = SchemaBuilder.record("R").fields().requiredLong("n").endRecord();
        registry.register("s", intField);
        assertTrue(registry.testCompatibility("s", longField), "a long reader reads ints");
        registry.register("s", longField);
        assertFalse(registry.testCompatibility("s", intField), "an int reader cannot read longs");
    }

    @Test
    void unknownIdsAndSubjects() {
        SchemaNotFoundException e = assertThrows(SchemaNotFoundException.class, () -> registry.getById(7));
        assertEquals(7, e.id());
        assertEquals(40403, e.errorCode());
        assertEquals(Optional.empty(), registry.latest("nobody"));
        assertEquals(List.of(), registry.versions("nobody"));
        assertEquals(Optional.empty(), registry.version("nobody", 1));
        assertThrows(IllegalArgumentException.class, () -> registry.register(" ", V1));
    }

    @Test
    void beforeCommitSeesOnlyNewVersionsAndItsFailureChangesNothing() {
        List<RegisteredSchema> persisted = new ArrayList<>();
        registry.register("a-value", V1, persisted::add);
        registry.register("a-value", V1, persisted::add);
        assertEquals(List.of(new RegisteredSchema("a-value", 1, 1, V1)), persisted);

        assertThrows(IllegalStateException.class, () -> registry.register("a-value", V2, r -> {
            throw new IllegalStateException("store down");
        }));
        assertEquals(List.of(1), registry.versions("a-value"));
        assertThrows(SchemaNotFoundException.class, () -> registry.getById(2));
        assertEquals(new RegisteredSchema("a-value", 2, 2, V2), registry.register("a-value", V2, persisted::add));
    }

    @Test
    void restoreReplaysIdsAndVersionsAndNewIdsContinueAfterThem() {
        registry.restore(new RegisteredSchema("a-value", 1, 5, V1));
        registry.restore(new RegisteredSchema("a-value", 2, 9, V2));
        registry.restore(new RegisteredSchema("a-value", 2, 9, V2));
        assertEquals(List.of(1, 2), registry.versions("a-value"));
        assertEquals(V1, registry.getById(5));
        assertEquals(9, registry.register("a-value", V2));
        assertEquals(10, registry.register("b-value", DivergenceResult.getClassSchema()));
    }

    @Test
    void restoreRefusesAnIdThatNamesTwoSchemas() {
        registry.restore(new RegisteredSchema("a-value", 1, 1, V1));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> registry.restore(new RegisteredSchema("b-value", 1, 1, V2)));
        assertTrue(e.getMessage().contains("schema id 1"), e.getMessage());
    }

    @Test
    void registeredSchemaIsValidated() {
        assertThrows(IllegalArgumentException.class, () -> new RegisteredSchema("", 1, 1, V1));
        assertThrows(IllegalArgumentException.class, () -> new RegisteredSchema("s", 0, 1, V1));
        assertThrows(IllegalArgumentException.class, () -> new RegisteredSchema("s", 1, -1, V1));
        assertThrows(NullPointerException.class, () -> new RegisteredSchema("s", 1, 1, null));
    }
}
