package io.dtm.schemas.registry;

/**
 * A schema registry refused a request or could not be asked. {@link #errorCode()} carries Confluent's
 * {@code error_code} (e.g. 40403, 42201, 50001) so callers can tell causes apart without parsing messages.
 */
public class SchemaRegistryException extends RuntimeException {

    /** The error code of a failure that never got an answer from the registry (connection refused, timeout). */
    public static final int NO_RESPONSE = -1;

    private final int errorCode;

    public SchemaRegistryException(int errorCode, String message) {
        this(errorCode, message, null);
    }

    public SchemaRegistryException(int errorCode, String message, Throwable cause) {
        super(message, cause);
        this.errorCode = errorCode;
    }

    /** Confluent's {@code error_code}, or {@link #NO_RESPONSE}. */
    public int errorCode() {
        return errorCode;
    }
}
