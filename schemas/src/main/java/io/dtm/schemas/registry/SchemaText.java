package io.dtm.schemas.registry;

import org.apache.avro.Schema;
import org.apache.avro.SchemaParseException;

/** How schemas travel as text between client, server and the store topic. */
final class SchemaText {
    private SchemaText() {}

    /**
     * Parses one self-contained schema. A fresh parser per call, because a parser remembers the named types it has
     * seen and would reject the second schema that defines the same record.
     */
    static Schema parse(String text) {
        if (text == null || text.isBlank()) {
            throw new InvalidSchemaException("schema text is missing", null);
        }
        try {
            return new Schema.Parser().parse(text);
        } catch (SchemaParseException | org.apache.avro.AvroTypeException e) {
            throw new InvalidSchemaException("invalid Avro schema: " + e.getMessage(), e);
        }
    }

    /**
     * The identity of a schema: Avro's full JSON form. Two texts that differ only in whitespace or field order of the
     * JSON object name the same schema; a changed doc or default is a new schema, as in Confluent's registry.
     */
    static String of(Schema schema) {
        return schema.toString();
    }
}
