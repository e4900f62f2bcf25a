package io.dtm.schemas.registry;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.Test;

class SchemaRegistryExceptionTest {

    @Test
    void anUnreachableOrFailingRegistryIsTransient() {
        assertTrue(SchemaRegistryException.isTransient(new SerializationException("x",
                new SchemaRegistryException(SchemaRegistryException.NO_RESPONSE, "refused", new IOException()))));
        assertTrue(SchemaRegistryException.isTransient(new SchemaRegistryException(503, "unavailable")));
        assertTrue(SchemaRegistryException.isTransient(new SchemaRegistryException(50001, "store error")));
    }

    @Test
    void anUnknownIdIsTheRecordsFaultEvenWhenItWrapsThePlainHttpError() {
        // HttpSchemaRegistryClient wraps the registry's 404 answer in a SchemaNotFoundException: the outer one decides
        SchemaRegistryException http404 = new SchemaRegistryException(40403, "HTTP 404");
        SerializationException failure = new SerializationException("unknown schema id 9999",
                new SchemaNotFoundException(9999, http404));
        assertFalse(SchemaRegistryException.isTransient(failure));
        assertFalse(SchemaRegistryException.isTransient(new SerializationException("not in wire format")));
        assertFalse(SchemaRegistryException.isTransient(new SchemaRegistryException(42201, "invalid schema")));
    }
}
