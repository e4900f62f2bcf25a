package io.dtm.schemas.serde;

import io.dtm.schemas.registry.RegisteredSchema;
import io.dtm.schemas.registry.SchemaRegistryClient;
import java.util.List;
import java.util.Optional;
import org.apache.avro.Schema;

/** A real registry that counts the calls the serdes make, to check what they cache. */
final class CountingRegistry implements SchemaRegistryClient {
    private final SchemaRegistryClient delegate;
    int registrations;
    int lookups;

    CountingRegistry(SchemaRegistryClient delegate) {
        this.delegate = delegate;
    }

    @Override
    public int register(String subject, Schema schema) {
        registrations++;
        return delegate.register(subject, schema);
    }

    @Override
    public Schema getById(int id) {
        lookups++;
        return delegate.getById(id);
    }

    @Override
    public Optional<RegisteredSchema> latest(String subject) {
        return delegate.latest(subject);
    }

    @Override
    public List<Integer> versions(String subject) {
        return delegate.versions(subject);
    }

    @Override
    public boolean testCompatibility(String subject, Schema schema) {
        return delegate.testCompatibility(subject, schema);
    }

    @Override
    public List<String> subjects() {
        return delegate.subjects();
    }
}
