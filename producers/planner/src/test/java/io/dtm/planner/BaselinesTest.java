package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static io.dtm.planner.Messages.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class BaselinesTest {

    @Test
    void uniformPutsEveryComponentAtPruneTInTheGivenOrder() {
        Map<String, CompressionSpec> schedule = Baselines.uniform(new TargetAllocation(0.5, 4), List.of("z", "a", "m"));
        assertEquals(List.of("z", "a", "m"), new ArrayList<>(schedule.keySet()));
        schedule.values().forEach(c -> assertEquals("prune:0.5", c.toString()));
        assertEquals(CompressionSpec.prune(0.5), schedule.get("a"));
    }

    @Test
    void uniformRoundsTUpToAPruneStep() {
        Map<String, CompressionSpec> schedule = Baselines.uniform(new TargetAllocation(0.12341, 1), List.of("a"));
        assertEquals("prune:0.1235", schedule.get("a").toString());
        assertEquals(0.1235, schedule.get("a").sparsity());
        assertEquals("prune:0.3", Baselines.uniform(new TargetAllocation(0.1 + 0.2, 1), List.of("a")).get("a").toString());
    }

    @Test
    void uniformRejectsMalformedComponentLists() {
        TargetAllocation allocation = new TargetAllocation(0.5, 4);
        assertMessage("needs at least one component", () -> Baselines.uniform(allocation, List.of()));
        assertMessage("component name is required", () -> Baselines.uniform(allocation, Arrays.asList("a", null)));
        assertMessage("component a appears twice", () -> Baselines.uniform(allocation, List.of("a", "b", "a")));
        assertThrows(UnsupportedOperationException.class,
                () -> Baselines.uniform(allocation, List.of("a")).put("b", CompressionSpec.int8()));
    }
}
