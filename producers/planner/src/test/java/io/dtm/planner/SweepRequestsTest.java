package io.dtm.planner;

import io.dtm.schemas.avro.SweepRequest;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static io.dtm.planner.TestSweeps.component;
import static io.dtm.planner.TestSweeps.sweep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SweepRequestsTest {

    @Test
    void aValidSweepHasNoProblems() {
        assertEquals(List.of(), SweepRequests.problems(sweep().build()));
    }

    @Test
    void everyInvalidFieldIsNamed() {
        SweepRequest bad = sweep().setSweepId("a/b").setModel(" ").setPrompts(new ArrayList<>()).setTokens(0)
                .setComponentRegex("(").setPruneStep(1.5).setRounds(0).setCommitRule("best").setFdtmFloor(Double.NaN)
                .setTargetSparsity(2).setShardSize(0).build();
        String message = assertThrows(IllegalArgumentException.class, () -> SweepRequests.validate(bad)).getMessage();
        for (String field : List.of("sweepId", "model", "prompts", "tokens", "componentRegex", "pruneStep", "rounds",
                "commitRule", "fdtmFloor", "targetSparsity", "shardSize")) {
            assertTrue(message.contains(field), field + " missing from: " + message);
        }
    }

    @Test
    void componentsMustBeNamedOnceWithParameters() {
        SweepRequest bad = sweep().setComponents(new ArrayList<>(List.of(component("a", 10), component("a", 10),
                component("b", 0)))).build();
        List<String> problems = SweepRequests.problems(bad);
        assertEquals(2, problems.size(), problems.toString());
        assertTrue(problems.get(0).contains("components[1].name"));
        assertTrue(problems.get(1).contains("components[2].params"));
        assertTrue(SweepRequests.problems(sweep().setComponents(new ArrayList<>()).build()).get(0).contains("components"));
    }

    @Test
    void aSweepMustOfferAnAction() {
        List<String> problems = SweepRequests.problems(sweep().setPruneStep(0).setInt8(false).build());
        assertEquals(List.of("no action is possible: pruneStep is 0 and int8 is false"), problems);
        assertEquals(List.of(), SweepRequests.problems(sweep().setPruneStep(0).setInt8(true).build()));
    }

    @Test
    void aPruneStepTooSmallForTheCompressionTextIsRejected() {
        assertTrue(SweepRequests.problems(sweep().setPruneStep(0.00004).build()).get(0).contains("pruneStep"));
    }

    @Test
    void aTargetAllocationNamesEachBadField() {
        assertEquals(List.of(), SweepRequests.problems(TestSweeps.target().build()));
        assertEquals(List.of(), SweepRequests.problems(TestSweeps.target().setPruneStep(0).setInt8(false).build()),
                "a target allocation needs no greedy action");
        for (double t : new double[] {0, 1, 1.5, -0.1, Double.NaN}) {
            List<String> problems = SweepRequests.problems(TestSweeps.target().setTargetSparsity(t).build());
            assertEquals(List.of("targetSparsity must be within (0, 1) for a target allocation, got " + t), problems);
        }
        SweepRequest bad = TestSweeps.target().setAllocation(new io.dtm.schemas.avro.AllocationRequest(0, "mean",
                new ArrayList<>(List.of(" ", "")), 1)).build();
        List<String> problems = SweepRequests.problems(bad);
        assertEquals(4, problems.size(), problems.toString());
        assertEquals("allocation.iterations must be >= 1, got 0", problems.get(0));
        assertTrue(problems.get(1).startsWith("allocation.metric: unknown allocation metric 'mean'"), problems.get(1));
        assertEquals("allocation.text has no line to score: every one of its 2 lines is blank", problems.get(2));
        assertTrue(problems.get(3).startsWith("allocation.textWindow must be >= 2"), problems.get(3));
    }
}
