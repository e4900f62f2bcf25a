package io.dtm.planner;

import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static io.dtm.planner.TestSweeps.entry;
import static io.dtm.planner.TestSweeps.sweep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrialPlannerTest {

    @Test
    void offersOnePruneStepAndInt8PerUnscheduledComponent() {
        SweepRequest s = sweep().setInt8(true).build();
        assertEquals(List.of("a prune:0.25", "a int8_rowwise", "b prune:0.25", "b int8_rowwise", "c prune:0.25",
                "c int8_rowwise"), texts(TrialPlanner.actions(s, List.of())));
    }

    @Test
    void pruneStepsBuildOnTheScheduledSparsityAndInt8IsNotOfferedTwice() {
        SweepRequest s = sweep().setInt8(true).build();
        List<ScheduleEntry> schedule = List.of(entry("b", "int8_rowwise"), entry("a", "prune:0.5"));
        assertEquals(List.of("a prune:0.75", "c prune:0.25", "c int8_rowwise"), texts(TrialPlanner.actions(s, schedule)));
    }

    @ParameterizedTest
    @CsvSource({"0.25, prune:0.25 prune:0.5 prune:0.75 prune:1.0", "0.3, prune:0.3 prune:0.6 prune:0.9",
            "0.1, prune:0.1 prune:0.2 prune:0.3 prune:0.4 prune:0.5 prune:0.6 prune:0.7 prune:0.8 prune:0.9 prune:1.0",
            "1, prune:1.0"})
    void pruneStepsStopAtFullSparsity(double step, String expected) {
        SweepRequest s = sweep().setPruneStep(step).setComponents(new ArrayList<>(List.of(TestSweeps.component("a", 10))))
                .build();
        List<String> offered = new ArrayList<>();
        List<ScheduleEntry> schedule = List.of();
        for (List<ScheduleEntry> actions = TrialPlanner.actions(s, schedule); !actions.isEmpty();
             actions = TrialPlanner.actions(s, schedule)) {
            assertEquals(1, actions.size());
            offered.add(actions.get(0).getCompression());
            schedule = TrialPlanner.apply(schedule, actions);
        }
        assertEquals(List.of(expected.split(" ")), offered);
    }

    @Test
    void kindsOfferEveryKindToEveryComponentItFits() {
        SweepRequest s = sweep().setKinds(kinds("prune", "nm:2:4", "int4g:20", "wanda", "int8_rowwise"))
                .setComponents(new ArrayList<>(List.of(TestSweeps.component("a", 80, 8),
                        TestSweeps.component("b", 200, 20)))).build();
        assertEquals(List.of("a prune:0.25", "a nm:2:4", "a wanda:0.25", "a int8_rowwise",
                        "b prune:0.25", "b nm:2:4", "b int4g:20", "b wanda:0.25", "b int8_rowwise"),
                texts(TrialPlanner.actions(s, List.of())));
        assertEquals(List.of("a int4g:20: 8 input columns are not a multiple of 20"), TrialPlanner.notPlanned(s));
    }

    @Test
    void withoutChainAComponentKeepsToOneKind() {
        SweepRequest s = sweep().setKinds(kinds("prune", "wanda", "nm:2:4", "int4g:5", "int8_rowwise")).build();
        List<ScheduleEntry> schedule = List.of(entry("a", "wanda:0.5"), entry("b", "nm:2:4"), entry("c", "int4g:5"));
        assertEquals(List.of("a wanda:0.75"), texts(TrialPlanner.actions(s, schedule)),
                "wanda goes on as wanda; nm and int4g are taken once; nothing mixes zeroing and quantizing");
    }

    @Test
    void withChainAZeroedComponentStillQuantizesAndAQuantizedOneStillZeroes() {
        SweepRequest s = sweep().setKinds(kinds("prune", "nm:2:4", "int4g:5", "int8_rowwise")).setChain(true)
                .setComponents(new ArrayList<>(List.of(TestSweeps.component("a", 100, 20),
                        TestSweeps.component("b", 100, 20), TestSweeps.component("c", 100, 20),
                        TestSweeps.component("d", 100, 20)))).build();
        List<ScheduleEntry> schedule = List.of(entry("a", "prune:0.5"), entry("b", "int8_rowwise"),
                entry("c", "prune:0.5+int4g:5"), entry("d", "prune:1.0"));
        assertEquals(List.of("a prune:0.75", "a prune:0.5+int4g:5", "a prune:0.5+int8_rowwise",
                        "b prune:0.25+int8_rowwise", "b nm:2:4+int8_rowwise",
                        "c prune:0.75+int4g:5"),
                texts(TrialPlanner.actions(s, schedule)),
                "zeroing steps on under a quantization; an all-zero matrix is not quantized");
    }

    @Test
    void withoutKindsPruneStepAndInt8MeanWhatTheyAlwaysHave() {
        SweepRequest legacy = sweep().setInt8(true).build();
        SweepRequest explicit = sweep().setKinds(kinds("prune", "int8_rowwise")).build();
        for (List<ScheduleEntry> schedule : List.of(List.<ScheduleEntry>of(),
                List.of(entry("b", "int8_rowwise"), entry("a", "prune:0.5")))) {
            assertEquals(TrialPlanner.actions(legacy, schedule), TrialPlanner.actions(explicit, schedule));
        }
        assertEquals(List.of(), TrialPlanner.notPlanned(legacy));
    }

    private static List<String> kinds(String... kinds) {
        return new ArrayList<>(List.of(kinds));
    }

    @Test
    void shardingCoversEveryPromptExactlyOnce() {
        SweepRequest s = sweep().setPrompts(new ArrayList<>(TestSweeps.prompts(11))).setShardSize(4).build();
        List<ComponentTrial> trials = TrialPlanner.candidates(s, 0, List.of());
        Map<String, List<ComponentTrial>> byTrial = trials.stream().collect(Collectors.groupingBy(ComponentTrial::getTrialId));
        assertEquals(3, byTrial.size());
        for (List<ComponentTrial> shards : byTrial.values()) {
            assertEquals(List.of(0, 1, 2), shards.stream().map(ComponentTrial::getShard).toList());
            assertEquals(List.of(0, 4, 8), shards.stream().map(ComponentTrial::getPromptOffset).toList());
            assertTrue(shards.stream().allMatch(t -> t.getShardCount() == 3 && t.getTrialsInRound() == 3));
            assertEquals(s.getPrompts(), shards.stream().flatMap(t -> t.getPrompts().stream()).toList());
        }
    }

    /** Issue 8: a shard size of Integer.MAX_VALUE overflowed into "0 trials in 0 shards" and a sweep that never ends. */
    @Test
    void theLargestShardSizeMakesOneShardOfEveryPrompt() {
        SweepRequest s = sweep().setShardSize(Integer.MAX_VALUE).build();
        assertEquals(1, TrialPlanner.shardCount(s));
        List<ComponentTrial> trials = TrialPlanner.candidates(s, 0, List.of());
        assertEquals(3, trials.size(), "one shard per candidate");
        for (ComponentTrial t : trials) {
            assertEquals(1, t.getShardCount());
            assertEquals(s.getPrompts(), t.getPrompts());
        }
    }

    @Test
    void candidateTrialsCarryTheSweepAndTheSortedSchedule() {
        SweepRequest s = sweep().build();
        List<ScheduleEntry> schedule = List.of(entry("c", "prune:0.25"), entry("a", "prune:0.5"));
        ComponentTrial t = TrialPlanner.candidates(s, 2, schedule).get(0);
        assertEquals(TrialKind.CANDIDATE, t.getKind());
        assertEquals(2, t.getRound());
        assertEquals("a", t.getComponent());
        assertEquals("prune:0.75", t.getCompression());
        assertEquals(List.of(entry("a", "prune:0.5"), entry("c", "prune:0.25")), t.getSchedule());
        assertEquals(s.getModel(), t.getModel());
        assertEquals(s.getPromptSetId(), t.getPromptSetId());
        assertEquals(s.getTokens(), t.getTokens());
        assertEquals(s.getSweepId(), t.getSweepId());
    }

    @Test
    void scheduleMeasureIsOneShardedTrialWithoutCandidate() {
        SweepRequest s = sweep().build();
        List<ComponentTrial> shards = TrialPlanner.scheduleMeasure(s, 1, List.of(entry("a", "prune:0.25")));
        assertEquals(3, shards.size());
        assertEquals(1, shards.stream().map(ComponentTrial::getTrialId).distinct().count());
        ComponentTrial t = shards.get(0);
        assertEquals(TrialKind.SCHEDULE, t.getKind());
        assertNull(t.getComponent());
        assertNull(t.getCompression());
        assertEquals(1, t.getTrialsInRound());
        assertEquals(List.of(entry("a", "prune:0.25")), t.getSchedule());
    }

    @Test
    void trialIdsAreDeterministicAndSensitiveToWhatIsMeasured() {
        List<ScheduleEntry> schedule = List.of(entry("a", "prune:0.5"), entry("b", "int8_rowwise"));
        String id = TrialPlanner.trialId("s", 1, TrialKind.CANDIDATE, "c", "prune:0.25", schedule);
        assertTrue(id.matches("[0-9a-f]{16}"), id);
        assertEquals(id, TrialPlanner.trialId("s", 1, TrialKind.CANDIDATE, "c", "prune:0.25",
                List.of(schedule.get(1), schedule.get(0))));
        List<String> variants = List.of(
                TrialPlanner.trialId("t", 1, TrialKind.CANDIDATE, "c", "prune:0.25", schedule),
                TrialPlanner.trialId("s", 2, TrialKind.CANDIDATE, "c", "prune:0.25", schedule),
                TrialPlanner.trialId("s", 1, TrialKind.SCHEDULE, "c", "prune:0.25", schedule),
                TrialPlanner.trialId("s", 1, TrialKind.CANDIDATE, "b", "prune:0.25", schedule),
                TrialPlanner.trialId("s", 1, TrialKind.CANDIDATE, "c", "prune:0.5", schedule),
                TrialPlanner.trialId("s", 1, TrialKind.CANDIDATE, "c", "prune:0.25", schedule.subList(0, 1)),
                TrialPlanner.trialId("s", 1, TrialKind.CANDIDATE, "c", "prune:0.25",
                        List.of(entry("a", "prune:0.75"), entry("b", "int8_rowwise"))));
        variants.forEach(v -> assertNotEquals(id, v));
        assertEquals(variants.size(), variants.stream().distinct().count());
        assertEquals(TrialPlanner.candidates(sweep().build(), 0, List.of()), TrialPlanner.candidates(sweep().build(), 0, List.of()));
    }

    @Test
    void promptSetIdDependsOnModelTokensAndEveryPromptInOrder() {
        String id = TrialPlanner.promptSetId("m", 64, List.of("x", "y"));
        assertTrue(id.matches("[0-9a-f]{16}"), id);
        assertEquals(id, TrialPlanner.promptSetId("m", 64, List.of("x", "y")));
        assertNotEquals(id, TrialPlanner.promptSetId("n", 64, List.of("x", "y")));
        assertNotEquals(id, TrialPlanner.promptSetId("m", 32, List.of("x", "y")));
        assertNotEquals(id, TrialPlanner.promptSetId("m", 64, List.of("y", "x")));
        assertNotEquals(id, TrialPlanner.promptSetId("m", 64, List.of("xy")));
    }

    @Test
    void applyReplacesAComponentsEntryAndKeepsNameOrder() {
        List<ScheduleEntry> schedule = List.of(entry("c", "prune:0.25"), entry("a", "prune:0.25"));
        List<ScheduleEntry> next = TrialPlanner.apply(schedule, List.of(entry("c", "prune:0.50"), entry("b", "int8")));
        assertEquals(List.of(entry("a", "prune:0.25"), entry("b", "int8_rowwise"), entry("c", "prune:0.5")), next);
    }

    @Test
    void aScheduleNamingAComponentTwiceIsRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> TrialPlanner.sorted(List.of(entry("a", "prune:0.25"), entry("a", "int8_rowwise"))));
    }

    private static List<String> texts(List<ScheduleEntry> entries) {
        return entries.stream().map(e -> e.getComponent() + " " + e.getCompression()).toList();
    }
}
