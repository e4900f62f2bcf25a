package io.dtm.schemas.registry;

/** Text that does not parse as an Avro schema; Confluent's error code 42201. */
public class InvalidSchemaException extends SchemaRegistryException {

    public static final int ERROR_CODE = 42201;

    public InvalidSchemaException(String message, Throwable cause) {
        super(ERROR_CODE, message, cause);
    }
}
