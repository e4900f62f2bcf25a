package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The schedules a target allocation is compared with at the same {@code T} (dtm-spec, "Target allocation",
 * baselines). Only the uniform one is here: the global magnitude threshold needs the weights, so the engine computes it.
 */
public final class Baselines {
    private Baselines() {}

    /**
     * The uniform baseline: every linear component at {@code prune(T)}, in the given order. {@code T} is rounded up to
     * the {@code 1e-4} grid like every sparsity of {@link TargetAllocation}, so the schedule's overall sparsity is that
     * value whatever the components' sizes, and never below {@code T}.
     */
    public static Map<String, CompressionSpec> uniform(TargetAllocation allocation, List<String> components) {
        if (components == null || components.isEmpty()) {
            throw new IllegalArgumentException("uniform baseline needs at least one component");
        }
        CompressionSpec prune = CompressionSpec.prune(TargetAllocation.onGrid(allocation.target()));
        Map<String, CompressionSpec> schedule = new LinkedHashMap<>();
        for (String component : components) {
            if (component == null || component.isBlank()) {
                throw new IllegalArgumentException("uniform baseline: component name is required");
            }
            if (schedule.put(component, prune) != null) {
                throw new IllegalArgumentException("uniform baseline: component " + component + " appears twice");
            }
        }
        return Collections.unmodifiableMap(schedule);
    }
}
