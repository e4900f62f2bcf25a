package io.dtm.planner;

import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.RankingEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static io.dtm.planner.TestSweeps.entry;
import static io.dtm.planner.TestSweeps.ranked;
import static io.dtm.planner.TestSweeps.sweep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RoundsTest {

    private static final DivergenceSummary MEASURED = DivergenceSummary.of(new int[] {6, 8}, new double[] {0.25, 0.0}, 8);

    @Test
    void aDecidedRoundCommitsTheBestAndHasTheNewScheduleMeasured() {
        SweepRequest s = sweep().build();
        Rounds.Decision d = Rounds.decide(s, 0, null, List.of(ranked("a", "prune:0.25", 7, 0.1),
                ranked("c", "prune:0.25", 5, 0.2), ranked("b", "prune:0.25", 6, 0.1)));

        assertFalse(d.stops());
        assertEquals(List.of(entry("a", "prune:0.25")), d.step().getCommitted());
        assertEquals(List.of(entry("a", "prune:0.25")), d.step().getSchedule());
        assertEquals(TrialPlanner.scheduleMeasure(s, 0, d.step().getSchedule()), d.measure());
        assertTrue(d.measure().stream().allMatch(t -> t.getKind() == TrialKind.SCHEDULE));
    }

    @Test
    void aStepReportsItsSchedulesSparsityAndBitsPerWeight() {
        // a 100, b 300, c 600 parameters, bfloat16
        SweepRequest s = sweep().setKinds(new java.util.ArrayList<>(List.of("nm:2:4", "int4g:5"))).setCommitRule("2")
                .build();
        Rounds.Decision d = Rounds.decide(s, 0, null, List.of(ranked("b", "nm:2:4", 7, 0.1), ranked("c", "int4g:5", 6, 0.1)));
        assertEquals(0.15, d.step().getOverallSparsity(), 1e-12);
        assertEquals((100 * 16 + 300 * 8 + 600 * 7.2) / 1000, d.step().getBitsPerWeight(), 1e-12);
        assertEquals(0.0, Rounds.decide(s, 0, null, List.of()).step().getOverallSparsity());
        assertEquals(16.0, Rounds.decide(s, 0, null, List.of()).step().getBitsPerWeight(), "the base model in bf16");
    }

    @Test
    void nothingAboveTheFloorStopsTheSweepWithTheScheduleItHas() {
        SweepRequest s = sweep().setFdtmFloor(6).build();
        ScheduleStep before = Rounds.measured(s, Rounds.decide(s, 0, null,
                List.of(ranked("a", "prune:0.25", 7, 0.1))).step(), MEASURED).step();

        Rounds.Decision d = Rounds.decide(s, 1, before, List.of(ranked("b", "prune:0.25", 6, 0.1)));

        assertTrue(d.stops());
        assertEquals(List.of(), d.step().getCommitted());
        assertEquals(before.getSchedule(), d.step().getSchedule());
        assertEquals(MEASURED.fdtm(), d.step().getFdtm());
        assertEquals(MEASURED.sdtm(), d.step().getSdtm());
        assertEquals(StopReason.FDTM_FLOOR.code(), d.step().getStopReason());
    }

    @Test
    void aRuleThatCommitsNothingOnlyRanksAndGoesOn() {
        SweepRequest s = sweep().setCommitRule("0").build();
        Rounds.Decision d = Rounds.decide(s, 0, null, List.of(ranked("a", "prune:0.25", 7, 0.1)));
        assertFalse(d.stops());
        assertEquals(List.of(), d.step().getSchedule());
    }

    @Test
    void sparsityIsWeightedByParameters() {
        SweepRequest s = sweep().setInt8(true).setCommitRule("2").build();
        Rounds.Decision d = Rounds.decide(s, 0, null, List.of(ranked("b", "prune:0.25", 7, 0.1),
                ranked("a", "int8_rowwise", 6, 0.1)));
        // b: 300 of 1000 parameters at 0.25; a: 100 of 1000 in int8
        assertEquals(0.075, d.step().getOverallSparsity(), 1e-12);
        assertEquals(0.1, d.step().getInt8Share(), 1e-12);
    }

    @Test
    void aMeasuredScheduleGoesOnWithTheNextRoundUntilAStopRuleHolds() {
        SweepRequest s = sweep().build();
        ScheduleStep decided = Rounds.decide(s, 0, null, List.of(ranked("a", "prune:0.25", 7, 0.1))).step();

        Rounds.Measured next = Rounds.measured(s, decided, MEASURED);
        assertFalse(next.step().getLast());
        assertEquals("", next.step().getStopReason());
        assertEquals(MEASURED.fdtm(), next.step().getFdtm());
        List<ComponentTrial> round1 = TrialPlanner.candidates(s, 1, decided.getSchedule());
        assertEquals(round1, next.nextRound());

        Rounds.Measured last = Rounds.measured(SweepRequest.newBuilder(s).setRounds(1).build(), decided, MEASURED);
        assertEquals(StopReason.ROUNDS.code(), last.step().getStopReason());
        assertEquals(List.of(), last.nextRound());
    }

    @Test
    void reachingTheTargetStopsDespiteFloatingPointNoise() {
        // a at 0.25 zeroes 100 of the 1000 parameters: 0.025, a hair below this target
        SweepRequest s = sweep().setTargetSparsity(0.025 + 1e-10).build();
        ScheduleStep decided = Rounds.decide(s, 0, null, List.of(ranked("a", "prune:0.25", 7, 0.1))).step();
        assertEquals(StopReason.TARGET_SPARSITY.code(), Rounds.measured(s, decided, MEASURED).step().getStopReason());
    }

    @Test
    void noActionLeftStops() {
        SweepRequest s = sweep().setPruneStep(0).setInt8(true).setCommitRule("3").build();
        ScheduleStep decided = Rounds.decide(s, 0, null, List.of(ranked("a", "int8_rowwise", 7, 0.1),
                ranked("b", "int8_rowwise", 6, 0.1), ranked("c", "int8_rowwise", 5, 0.1))).step();
        Rounds.Measured m = Rounds.measured(s, decided, MEASURED);
        assertEquals(StopReason.NO_ACTIONS.code(), m.step().getStopReason());
        assertEquals(List.of(), m.nextRound());
    }

    @Test
    void aFailedTrialStopsTheSweepAndSaysWhy() {
        SweepRequest s = sweep().build();
        ScheduleStep failed = Rounds.failed(s, 0, null, "trial t shard 0 was dead-lettered");
        assertTrue(failed.getLast());
        assertEquals(StopReason.FAILED.code(), failed.getStopReason());
        assertEquals("trial t shard 0 was dead-lettered", failed.getFailure());
        assertEquals(s.getTokens(), failed.getFdtm());
        assertEquals(0.0, failed.getSdtm());
    }

    @Test
    void aStepIsTheLastExactlyWhenNothingFollows() {
        SweepRequest s = sweep().build();
        ScheduleStep decided = Rounds.decide(s, 0, null, List.of(ranked("a", "prune:0.25", 7, 0.1))).step();
        assertThrows(IllegalArgumentException.class, () -> new Rounds.Decision(decided, List.of()));
        assertThrows(IllegalArgumentException.class, () -> new Rounds.Measured(decided, List.of()));
    }

    private static final List<RankingEntry> INT8_RANKING = List.of(ranked("c", "int8_rowwise", 7, 0.05),
            ranked("a", "int8_rowwise", 8, 0.0), ranked("b", "int8_rowwise", 7.5, 0.02));

    /** cumulative-floor:6 on a, b, c (ranked in that order): the whole ranking fails, a holds, a + b holds. */
    @Test
    void cumulativeFloorMeasuresPrefixesAndCommitsTheLongestThatHolds() {
        SweepRequest s = sweep().setPruneStep(0).setInt8(true).setRounds(1).setCommitRule("cumulative-floor:6").build();

        Rounds.Decision all = Rounds.decide(s, 0, null, INT8_RANKING);
        assertEquals(List.of("a", "b", "c"), all.step().getCommitted().stream().map(e -> e.getComponent()).toList());
        assertEquals(TrialPlanner.scheduleMeasure(s, 0, all.step().getSchedule()), all.measure());

        List<PrefixSearch.Probe> probes = new ArrayList<>(List.of(new PrefixSearch.Probe(3, 5.5, 0.3)));
        Rounds.Decision one = (Rounds.Decision) Rounds.probed(s, 0, null, INT8_RANKING, probes);
        assertEquals(List.of(entry("a", "int8_rowwise")), one.step().getCommitted());
        assertEquals(TrialPlanner.scheduleMeasure(s, 0, one.step().getSchedule()), one.measure());

        probes.add(new PrefixSearch.Probe(1, 7.9, 0.01));
        Rounds.Decision two = (Rounds.Decision) Rounds.probed(s, 0, null, INT8_RANKING, probes);
        assertEquals(List.of(entry("a", "int8_rowwise"), entry("b", "int8_rowwise")), two.step().getCommitted());

        probes.add(new PrefixSearch.Probe(2, 6.2, 0.1));
        Rounds.Measured done = (Rounds.Measured) Rounds.probed(s, 0, null, INT8_RANKING, probes);
        assertEquals(two.step().getSchedule(), done.step().getSchedule());
        assertEquals(6.2, done.step().getFdtm());
        assertEquals(0.1, done.step().getSdtm());
        assertEquals(0.4, done.step().getInt8Share(), 1e-12, "a and b: 400 of 1000 parameters");
        assertTrue(done.step().getLast());
        assertEquals(StopReason.ROUNDS.code(), done.step().getStopReason());
    }

    @Test
    void cumulativeFloorWithNoHoldingPrefixStopsWithTheScheduleUnchanged() {
        SweepRequest s = sweep().setPruneStep(0).setInt8(true).setRounds(2).setCommitRule("cumulative-floor:7.95").build();
        Rounds.Measured m = (Rounds.Measured) Rounds.probed(s, 0, null, INT8_RANKING,
                List.of(new PrefixSearch.Probe(3, 5.5, 0.3), new PrefixSearch.Probe(1, 7.9, 0.01)));
        assertEquals(StopReason.FDTM_FLOOR.code(), m.step().getStopReason());
        assertEquals(List.of(), m.step().getSchedule());
        assertEquals(List.of(), m.nextRound());
        assertEquals(s.getTokens(), m.step().getFdtm());
    }

    @Test
    void onlyACumulativeRuleMeasuresPrefixes() {
        SweepRequest s = sweep().setCommitRule("floor:6").build();
        Messages.assertMessage("measures no prefixes",
                () -> Rounds.probed(s, 0, null, INT8_RANKING, List.of()));
    }
}
