package io.dtm.schemas.registry;

/** A schema that fails the subject's BACKWARD compatibility check; Confluent's HTTP 409, error code 409. */
public class IncompatibleSchemaException extends SchemaRegistryException {

    public static final int ERROR_CODE = 409;

    private final String subject;

    public IncompatibleSchemaException(String subject, String message) {
        super(ERROR_CODE, message);
        this.subject = subject;
    }

    public String subject() {
        return subject;
    }
}
