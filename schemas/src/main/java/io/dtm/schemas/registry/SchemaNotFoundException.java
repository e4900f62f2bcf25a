package io.dtm.schemas.registry;

/** No schema has the requested id; Confluent's error code 40403. */
public class SchemaNotFoundException extends SchemaRegistryException {

    public static final int ERROR_CODE = 40403;

    private final int id;

    public SchemaNotFoundException(int id) {
        this(id, null);
    }

    public SchemaNotFoundException(int id, Throwable cause) {
        super(ERROR_CODE, "schema id " + id + " not found", cause);
        this.id = id;
    }

    public int id() {
        return id;
    }
}
