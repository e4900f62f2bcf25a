package io.dtm.engine;

import io.dtm.schemas.CompressionSpec;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * A compressed model as a set of component → compression changes to the base model (a schedule plus a candidate).
 * The empty trial is the base model itself.
 */
public record Trial(Map<String, CompressionSpec> changes) {

    public Trial {
        changes = Collections.unmodifiableMap(new TreeMap<>(changes));
    }

    public static Trial of(String component, CompressionSpec compression) {
        return new Trial(Map.of(component, compression));
    }

    public static Trial none() {
        return new Trial(Map.of());
    }

    /** This trial plus one more change; a later change to the same component replaces the earlier one. */
    public Trial plus(String component, CompressionSpec compression) {
        Map<String, CompressionSpec> m = new TreeMap<>(changes);
        m.put(component, compression);
        return new Trial(m);
    }

    @Override
    public String toString() {
        return changes.isEmpty() ? "base" : changes.toString();
    }
}
