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
    void kindsMustParseOnceAndNotConflictWithTheOptionsTheyGeneralise() {
        assertEquals(List.of(), SweepRequests.problems(sweep().setKinds(kinds("prune", "nm:2:4", "int8")).build()));
        List<String> problems = SweepRequests.problems(sweep().setKinds(kinds("prune", "prune", "fp8", "wanda:0.5"))
                .setInt8(true).setPruneStep(0).build());
        assertEquals(5, problems.size(), problems.toString());
        assertTrue(problems.get(0).contains("prune twice"), problems.get(0));
        assertTrue(problems.get(1).contains("unknown kind 'fp8'"), problems.get(1));
        assertTrue(problems.get(2).contains("prune step"), problems.get(2));
        assertTrue(problems.get(3).contains("int8 and kinds conflict"), problems.get(3));
        assertTrue(problems.get(4).contains("pruneStep (--prune-step), which is 0"), problems.get(4));
    }

    @Test
    void groupedKindsNeedTheComponentsWidthsAndAKindMustFitSomewhere() {
        SweepRequest unknownWidth = sweep().setKinds(kinds("nm:2:4"))
                .setComponents(new ArrayList<>(List.of(component("a", 100, 0)))).build();
        assertTrue(SweepRequests.problems(unknownWidth).get(0).contains("components[0].columns must be >= 1"));
        assertEquals(List.of(), SweepRequests.problems(sweep().setComponents(new ArrayList<>(List.of(
                component("a", 100, 0)))).build()), "prune needs no width");
        assertTrue(SweepRequests.problems(sweep().setComponents(new ArrayList<>(List.of(component("a", 100, 7))))
                .build()).get(0).contains("columns 7 does not divide its 100 params"));
        List<String> none = SweepRequests.problems(sweep().setKinds(kinds("int4g:64")).build());
        assertEquals(1, none.size(), none.toString());
        assertTrue(none.get(0).startsWith("no action is possible: no kind fits any component (a int4g:64: 10 input"
                + " columns are not a multiple of 64;"), none.get(0));
        assertTrue(SweepRequests.problems(sweep().setSourceBits(0).build()).get(0).contains("sourceBits"));
    }

    private static List<String> kinds(String... kinds) {
        return new ArrayList<>(List.of(kinds));
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
        assertEquals(List.of(), SweepRequests.problems(TestSweeps.target()
                .setKinds(new ArrayList<>(List.of("prune", "wanda", "nm:1:2"))).build()), "kinds that zero entries");
        List<String> quantize = SweepRequests.problems(TestSweeps.target()
                .setKinds(new ArrayList<>(List.of("wanda", "int8_rowwise"))).setChain(true).build());
        assertEquals(2, quantize.size(), quantize.toString());
        assertTrue(quantize.get(0).startsWith("chain (--chain) does not apply to a target allocation"), quantize.get(0));
        assertTrue(quantize.get(1).startsWith("kinds [int8_rowwise] quantize and zero nothing"), quantize.get(1));
        List<String> unfit = SweepRequests.problems(TestSweeps.target().setKinds(new ArrayList<>(List.of("nm:2:4")))
                .build());
        assertTrue(!unfit.isEmpty() && unfit.get(0).contains("fits none of the kinds [nm:2:4] (10 input columns)"),
                unfit.toString());
    }
}
