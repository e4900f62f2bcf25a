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

    /**
     * Whether {@code failure} is the registry being unreachable or failing on its side (no response, HTTP 5xx or a
     * 5xxxx error code) rather than the record being wrong: such a record must be retried, never dead-lettered. The
     * outermost registry exception in the cause chain decides, because clients wrap a plain HTTP error in a more
     * specific one (a 404 becomes {@link SchemaNotFoundException}).
     */
    public static boolean isTransient(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof SchemaRegistryException r) {
                int code = r.errorCode();
                return code == NO_RESPONSE || (code >= 500 && code < 600) || (code >= 50000 && code < 60000);
            }
        }
        return false;
    }
}
