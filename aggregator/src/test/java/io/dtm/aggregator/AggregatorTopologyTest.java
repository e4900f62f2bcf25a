package io.dtm.aggregator;

import io.dtm.planner.StopReason;
import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingEntry;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;
import org.apache.kafka.streams.test.TestRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static io.dtm.aggregator.AggregatorDriver.TOKENS;
import static io.dtm.aggregator.AggregatorDriver.result;
import static io.dtm.aggregator.AggregatorDriver.sweep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AggregatorTopologyTest {
    private final AggregatorDriver agg = new AggregatorDriver();

    @AfterEach
    void close() {
        agg.close();
    }

    @Test
    void twoRoundsRankDecideMeasureAndPlanTheNextRound() {
        SweepRequest sweep = sweep().build();
        agg.start(sweep);
        assertTrue(agg.trials.isEmpty(), "round 0 trials are the publisher's");
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        List<ComponentTrial> a = shards(round0, "a");
        List<ComponentTrial> b = shards(round0, "b");

        agg.report(a.get(0), 8, 8);
        RankingUpdate update = single(agg.rankings.readRecordsToList()).value();
        assertEquals(List.of("a prune:0.5 incomplete 8.0"), describe(update));
        assertEquals(2, update.getTrialsTotal());
        assertEquals(0, update.getTrialsDone());

        agg.report(a.get(1), 8, 4);
        assertEquals(List.of("a prune:0.5 complete 7.0"), describe(agg.rankings.readValue()));
        agg.report(b.get(0), 4, 4);
        update = agg.rankings.readValue();
        assertEquals(List.of("a prune:0.5 complete 7.0", "b prune:0.5 incomplete 4.0"), describe(update));
        assertEquals(1, update.getTrialsDone());
        assertFalse(update.getDecided());
        assertTrue(agg.trials.isEmpty());

        agg.report(b.get(1), 4, 2);
        TestRecord<String, RankingUpdate> decided = single(agg.rankings.readRecordsToList());
        assertEquals(Topics.roundKey("s1", 0), decided.key());
        assertEquals(List.of("a prune:0.5 complete 7.0", "b prune:0.5 complete 3.5"), describe(decided.value()));
        assertEquals(2, decided.value().getTrialsDone());
        assertTrue(decided.value().getDecided());
        List<ScheduleEntry> schedule0 = List.of(new ScheduleEntry("a", "prune:0.5"));
        List<ComponentTrial> measure0 = values(agg.trials.readRecordsToList());
        assertEquals(TrialPlanner.scheduleMeasure(sweep, 0, schedule0), measure0);
        assertTrue(measure0.stream().allMatch(t -> t.getKind() == TrialKind.SCHEDULE));
        assertTrue(agg.steps.isEmpty(), "the step waits for the schedule's own measurement");

        agg.report(measure0.get(0), 8, 7);
        assertTrue(agg.steps.isEmpty());
        agg.report(measure0.get(1), 6, 7);
        TestRecord<String, ScheduleStep> step0 = single(agg.steps.readRecordsToList());
        assertEquals(Topics.roundKey("s1", 0), step0.key());
        assertEquals(schedule0, step0.value().getCommitted());
        assertEquals(schedule0, step0.value().getSchedule());
        assertEquals(7.0, step0.value().getFdtm());
        assertEquals(0.125, step0.value().getSdtm());
        assertEquals(50.0 / 400, step0.value().getOverallSparsity());
        assertEquals(0.0, step0.value().getInt8Share());
        assertFalse(step0.value().getLast());
        assertEquals("", step0.value().getStopReason());

        List<TestRecord<String, ComponentTrial>> round1Records = agg.trials.readRecordsToList();
        List<ComponentTrial> round1 = values(round1Records);
        assertEquals(TrialPlanner.candidates(sweep, 1, schedule0), round1);
        assertEquals(List.of("a prune:1.0", "b prune:0.5"),
                round1.stream().map(t -> t.getComponent() + " " + t.getCompression()).distinct().toList());
        assertTrue(round1.stream().allMatch(t -> t.getSchedule().equals(schedule0) && t.getRound() == 1));
        round1Records.forEach(r -> assertEquals(Topics.shardKey(r.value().getTrialId(), r.value().getShard()), r.key()));

        agg.reportTrial(shards(round1, "a"), 2);
        agg.reportTrial(shards(round1, "b"), 6);
        RankingUpdate ranking1 = last(agg.rankings.readValuesToList());
        assertEquals(1, ranking1.getRound());
        assertEquals(List.of("b prune:0.5 complete 6.0", "a prune:1.0 complete 2.0"), describe(ranking1));
        assertTrue(ranking1.getDecided());
        List<ScheduleEntry> schedule1 = List.of(new ScheduleEntry("a", "prune:0.5"), new ScheduleEntry("b", "prune:0.5"));
        List<ComponentTrial> measure1 = agg.trials.readValuesToList();
        assertEquals(TrialPlanner.scheduleMeasure(sweep, 1, schedule1), measure1);

        agg.reportTrial(measure1, 5);
        ScheduleStep step1 = agg.steps.readValue();
        assertEquals(1, step1.getRound());
        assertEquals(List.of(new ScheduleEntry("b", "prune:0.5")), step1.getCommitted());
        assertEquals(schedule1, step1.getSchedule());
        assertEquals(5.0, step1.getFdtm());
        assertEquals(0.5, step1.getOverallSparsity());
        assertTrue(step1.getLast());
        assertEquals(StopReason.ROUNDS.code(), step1.getStopReason());
        assertTrue(agg.trials.isEmpty(), "no round after the last");
        assertTrue(agg.deadLetters.isEmpty());
    }

    @Test
    void aRedeliveredShardChangesNothing() {
        SweepRequest sweep = sweep().setRounds(2).build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.report(shards(round0, "a").get(0), 8, 8);
        agg.report(shards(round0, "a").get(0), 8, 8);
        assertEquals(1, agg.rankings.readRecordsToList().size(), "a redelivery publishes no new ranking");

        agg.reportTrial(shards(round0, "a"), 8);
        agg.reportTrial(shards(round0, "b"), 3);
        RankingUpdate decided = last(agg.rankings.readValuesToList());
        assertEquals(List.of("a prune:0.5 complete 8.0", "b prune:0.5 complete 3.0"), describe(decided));
        List<ComponentTrial> measure = agg.trials.readValuesToList();
        assertEquals(2, measure.size());

        agg.reportTrial(shards(round0, "b"), 3);
        agg.report(shards(round0, "a").get(1), 8, 8);
        assertTrue(agg.rankings.isEmpty(), "redelivered candidates after the decision change no ranking");
        assertTrue(agg.trials.isEmpty(), "and do not decide the round again");

        agg.reportTrial(measure, 8);
        assertEquals(1, agg.steps.readRecordsToList().size());
        assertEquals(4, agg.trials.readRecordsToList().size(), "round 1: two candidates of two shards");
        agg.reportTrial(measure, 8);
        assertTrue(agg.steps.isEmpty(), "a redelivered measure publishes no second step");
        assertTrue(agg.trials.isEmpty(), "nor plans round 1 twice");
        assertTrue(agg.deadLetters.isEmpty());
    }

    @Test
    void tiesAreRankedBySdtmThenNameAndTheWinnerIsCommitted() {
        SweepRequest sweep = sweep().setComponents(new ArrayList<>(List.of(new ComponentInfo("c", 100L, 10),
                new ComponentInfo("b", 100L, 10), new ComponentInfo("a", 100L, 10)))).build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        // Every candidate has FDTM 6; a has the highest SDTM, b and c tie completely.
        for (String component : List.of("a", "b", "c")) {
            for (ComponentTrial shard : shards(round0, component)) {
                DivergenceResult r = result(shard, 6, 6);
                double sdt = component.equals("a") ? 0.5 : 0.25;
                r.setSdt(List.of(sdt, sdt));
                agg.results.pipeInput(Topics.shardKey(shard.getTrialId(), shard.getShard()), r);
            }
        }
        RankingUpdate decided = last(agg.rankings.readValuesToList());
        assertEquals(List.of("b prune:0.5 complete 6.0", "c prune:0.5 complete 6.0", "a prune:0.5 complete 6.0"),
                describe(decided));
        assertEquals(List.of(new ScheduleEntry("b", "prune:0.5")), agg.trials.readValuesToList().get(0).getSchedule());
    }

    @Test
    void undecodableBytesAreDeadLetteredAndProcessingGoesOn() {
        SweepRequest sweep = sweep().build();
        agg.start(sweep);
        byte[] garbage = "not avro".getBytes(StandardCharsets.UTF_8);
        agg.rawResults.pipeInput("t/0", garbage);
        agg.rawResults.pipeInput("t/1", (byte[]) null);

        List<TestRecord<String, DeadLetter>> dead = agg.deadLetters.readRecordsToList();
        assertEquals(2, dead.size());
        DeadLetter first = dead.get(0).value();
        assertEquals("t/0", dead.get(0).key());
        assertEquals(Topics.DIVERGENCES.name(), first.getSourceTopic());
        assertEquals(0, first.getPartition());
        assertEquals(0L, first.getOffset());
        assertEquals("t/0", first.getKey());
        assertEquals("aggregator", first.getService());
        assertEquals(ByteBuffer.wrap(garbage), first.getPayload());
        assertTrue(first.getReason().startsWith("cannot deserialize"), first.getReason());
        assertEquals(1L, dead.get(1).value().getOffset());
        assertTrue(dead.get(1).value().getReason().contains("no value"), dead.get(1).value().getReason());

        agg.report(TrialPlanner.candidates(sweep, 0, List.of()).get(0), 8, 8);
        assertEquals(1, agg.rankings.readRecordsToList().size());
    }

    @Test
    void invalidResultsAreDeadLetteredWithTheirReason() {
        SweepRequest sweep = sweep().build();
        agg.start(sweep);
        ComponentTrial shard = TrialPlanner.candidates(sweep, 0, List.of()).get(0);

        DivergenceResult badSweepId = result(shard, 8, 8);
        badSweepId.setSweepId("no/pe");
        DivergenceResult lengths = result(shard, 8, 8);
        lengths.setSdt(List.of(0.0));
        DivergenceResult outOfRange = result(shard, 8, TOKENS + 1);
        DivergenceResult negative = result(shard, -1, 8);
        DivergenceResult wrongShard = result(shard, 8, 8, 8);
        DivergenceResult notPlanned = result(shard, 8, 8);
        notPlanned.setTrialId("0123456789abcdef");
        DivergenceResult laterRound = result(shard, 8, 8);
        laterRound.setRound(1);
        List<DivergenceResult> invalid = List.of(badSweepId, lengths, outOfRange, negative, wrongShard, notPlanned,
                laterRound);
        invalid.forEach(r -> agg.results.pipeInput("key-" + r.hashCode(), r));

        List<String> reasons = agg.deadLetters.readValuesToList().stream().map(DeadLetter::getReason).toList();
        assertEquals(invalid.size(), reasons.size(), reasons.toString());
        assertTrue(reasons.get(0).contains("unknown sweep no/pe"), reasons.get(0));
        assertTrue(reasons.get(1).contains("sdt has 1"), reasons.get(1));
        assertTrue(reasons.get(2).contains("outside 0..8"), reasons.get(2));
        assertTrue(reasons.get(3).contains("outside 0..8"), reasons.get(3));
        assertTrue(reasons.get(4).contains("must score prompts 0..1"), reasons.get(4));
        assertTrue(reasons.get(5).contains("not a candidate of round 0"), reasons.get(5));
        assertTrue(reasons.get(6).contains("round 1 of sweep s1 has not started"), reasons.get(6));
        assertTrue(agg.rankings.isEmpty(), "nothing invalid is ranked");

        agg.report(shard, 8, 8);
        assertEquals(List.of(shard.getComponent() + " prune:0.5 incomplete 8.0"), describe(agg.rankings.readValue()));
    }

    @Test
    void resultsArrivingBeforeTheirSweepAreReplayedWhenItArrives() {
        SweepRequest sweep = sweep().build();
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.reportTrial(shards(round0, "a"), 8);
        agg.report(shards(round0, "b").get(0), 4, 4);
        agg.driver.advanceWallClockTime(AggregatorDriver.UNKNOWN_SWEEP_GRACE.minusSeconds(1));
        assertTrue(agg.rankings.isEmpty());
        assertTrue(agg.deadLetters.isEmpty(), "within the grace a result waits for its sweep");

        agg.start(sweep);
        RankingUpdate replayed = last(agg.rankings.readValuesToList());
        assertEquals(List.of("a prune:0.5 complete 8.0", "b prune:0.5 incomplete 4.0"), describe(replayed));
        agg.driver.advanceWallClockTime(AggregatorDriver.UNKNOWN_SWEEP_GRACE);
        assertTrue(agg.deadLetters.isEmpty(), "replayed results are no longer parked");
    }

    @Test
    void aResultOfAnUnknownSweepIsDeadLetteredAfterTheGrace() {
        agg.start(sweep().build());
        DivergenceResult orphan = result(TrialPlanner.candidates(sweep().setSweepId("nope").build(), 0, List.of()).get(0),
                8, 8);
        agg.results.pipeInput("orphan-key", orphan);
        agg.driver.advanceWallClockTime(AggregatorDriver.UNKNOWN_SWEEP_GRACE.minusSeconds(1));
        assertTrue(agg.deadLetters.isEmpty());

        agg.driver.advanceWallClockTime(Duration.ofSeconds(1));
        TestRecord<String, DeadLetter> dead = single(agg.deadLetters.readRecordsToList());
        assertEquals("orphan-key", dead.key());
        assertEquals(Topics.DIVERGENCES.name(), dead.value().getSourceTopic());
        assertEquals(0L, dead.value().getOffset());
        assertTrue(dead.value().getReason().startsWith("unknown sweep nope"), dead.value().getReason());
        assertTrue(agg.rankings.isEmpty());
    }

    @Test
    void invalidOrRedefinedSweepsAreDeadLetteredAndAnIdenticalOneIsIgnored() {
        SweepRequest sweep = sweep().build();
        agg.start(sweep);
        agg.start(sweep);
        assertTrue(agg.deadLetters.isEmpty(), "publishing the same sweep again is harmless");

        agg.sweeps.pipeInput("s1", sweep().setRounds(5).build());
        agg.sweeps.pipeInput("s2", sweep().setSweepId("s2").setTokens(0).build());
        agg.sweeps.pipeInput("other", sweep().setSweepId("s3").build());
        List<String> reasons = agg.deadLetters.readValuesToList().stream().map(DeadLetter::getReason).toList();
        assertEquals(3, reasons.size());
        assertTrue(reasons.get(0).contains("already exists with another definition"), reasons.get(0));
        assertTrue(reasons.get(1).contains("tokens must be >= 1"), reasons.get(1));
        assertTrue(reasons.get(2).contains("key 'other' is not the sweepId"), reasons.get(2));
    }

    @Test
    void commitZeroOnlyRanksButStillMeasuresAndGoesOn() {
        SweepRequest sweep = sweep().setCommitRule("0").build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.reportTrial(shards(round0, "a"), 7);
        agg.reportTrial(shards(round0, "b"), 5);
        assertTrue(last(agg.rankings.readValuesToList()).getDecided());
        List<ComponentTrial> measure = agg.trials.readValuesToList();
        assertEquals(TrialPlanner.scheduleMeasure(sweep, 0, List.of()), measure);

        agg.reportTrial(measure, TOKENS);
        ScheduleStep step = agg.steps.readValue();
        assertEquals(List.of(), step.getCommitted());
        assertEquals(List.of(), step.getSchedule());
        assertEquals(TOKENS, step.getFdtm());
        assertEquals(0.0, step.getOverallSparsity());
        assertFalse(step.getLast());
        assertEquals(TrialPlanner.candidates(sweep, 1, List.of()), agg.trials.readValuesToList());
    }

    @Test
    void noCandidateAboveTheFloorStopsTheSweep() {
        SweepRequest sweep = sweep().setFdtmFloor(5.0).build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.reportTrial(shards(round0, "a"), 5);
        agg.reportTrial(shards(round0, "b"), 3);

        ScheduleStep step = agg.steps.readValue();
        assertEquals(0, step.getRound());
        assertTrue(step.getLast());
        assertEquals(StopReason.FDTM_FLOOR.code(), step.getStopReason());
        assertEquals(List.of(), step.getCommitted());
        assertEquals(List.of(), step.getSchedule());
        assertEquals(TOKENS, step.getFdtm(), "the empty schedule is the base model");
        assertTrue(agg.trials.isEmpty(), "nothing to measure, no next round");
    }

    @Test
    void reachingTheTargetSparsityStopsTheSweep() {
        SweepRequest sweep = sweep().setTargetSparsity(0.1).setRounds(5).build();
        agg.start(sweep);
        ScheduleStep step = runRound0(sweep, 8, 4);
        assertEquals(0.125, step.getOverallSparsity());
        assertTrue(step.getLast());
        assertEquals(StopReason.TARGET_SPARSITY.code(), step.getStopReason());
        assertTrue(agg.trials.isEmpty());
    }

    @Test
    void noActionLeftStopsTheSweep() {
        SweepRequest sweep = sweep().setComponents(new ArrayList<>(List.of(new ComponentInfo("a", 100L, 10))))
                .setPruneStep(0).setInt8(true).setRounds(5).build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.reportTrial(round0, 4);
        agg.reportTrial(agg.trials.readValuesToList(), 4);
        ScheduleStep step = agg.steps.readValue();
        assertEquals(List.of(new ScheduleEntry("a", "int8_rowwise")), step.getSchedule());
        assertTrue(step.getLast());
        assertEquals(StopReason.NO_ACTIONS.code(), step.getStopReason());
    }

    @Test
    void theLastRoundStops() {
        SweepRequest sweep = sweep().setRounds(1).build();
        agg.start(sweep);
        ScheduleStep step = runRound0(sweep, 8, 4);
        assertTrue(step.getLast());
        assertEquals(StopReason.ROUNDS.code(), step.getStopReason());
        assertTrue(agg.trials.isEmpty());
    }

    @Test
    void int8SharesAreWeightedByParameters() {
        SweepRequest sweep = sweep().setPruneStep(0).setInt8(true).setCommitRule("fraction:1").setRounds(1).build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.reportTrial(shards(round0, "a"), 8);
        agg.reportTrial(shards(round0, "b"), 7);
        agg.reportTrial(agg.trials.readValuesToList(), 7);
        ScheduleStep step = agg.steps.readValue();
        assertEquals(List.of(new ScheduleEntry("a", "int8_rowwise"), new ScheduleEntry("b", "int8_rowwise")),
                step.getCommitted());
        assertEquals(1.0, step.getInt8Share());
        assertEquals(0.0, step.getOverallSparsity());
    }

    /**
     * Kinds: every fitting kind of every component is ranked with its sparsity and bits per weight, the committed one's
     * bits reach the step, and with chain the next round quantizes what was zeroed.
     */
    @Test
    void kindsAreRankedWithTheirFootprintAndChainedInTheNextRound() {
        SweepRequest sweep = sweep().setComponents(new ArrayList<>(List.of(new ComponentInfo("a", 100L, 10),
                        new ComponentInfo("b", 300L, 20))))
                .setKinds(new ArrayList<>(List.of("nm:2:4", "int4g:5", "wanda"))).setChain(true).build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        int fdt = 1;
        for (String candidate : List.of("a int4g:5", "a wanda:0.5", "b int4g:5", "b wanda:0.5", "b nm:2:4")) {
            agg.reportTrial(round0.stream().filter(t -> candidate.equals(t.getComponent() + " " + t.getCompression()))
                    .toList(), fdt++);
        }
        RankingUpdate ranked = last(agg.rankings.readValuesToList());
        assertTrue(ranked.getDecided());
        assertEquals(List.of("b nm:2:4 0.5 8.0", "b wanda:0.5 0.5 8.0", "b int4g:5 0.0 7.2", "a wanda:0.5 0.5 8.0",
                        "a int4g:5 0.0 7.2"),
                ranked.getEntries().stream().map(e -> e.getComponent() + " " + e.getCompression() + " "
                        + e.getSparsity() + " " + e.getBitsPerWeight()).toList());
        agg.reportTrial(agg.trials.readValuesToList(), 7);
        ScheduleStep step = agg.steps.readValue();
        assertEquals(List.of(new ScheduleEntry("b", "nm:2:4")), step.getSchedule());
        assertEquals(150.0 / 400, step.getOverallSparsity());
        assertEquals((100 * 16 + 300 * 8) / 400.0, step.getBitsPerWeight());
        assertEquals(List.of("a int4g:5", "a wanda:0.5", "b nm:2:4+int4g:5"), agg.trials.readValuesToList().stream()
                .map(t -> t.getComponent() + " " + t.getCompression()).distinct().toList());
    }

    /** Scores candidate a with {@code fdtA} and b with {@code fdtB}, measures the schedule at 8; returns the step. */
    private ScheduleStep runRound0(SweepRequest sweep, int fdtA, int fdtB) {
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.reportTrial(shards(round0, "a"), fdtA);
        agg.reportTrial(shards(round0, "b"), fdtB);
        agg.reportTrial(agg.trials.readValuesToList(), 8);
        return agg.steps.readValue();
    }

    static List<ComponentTrial> shards(List<ComponentTrial> trials, String component) {
        return trials.stream().filter(t -> component.equals(t.getComponent())).toList();
    }

    private static List<String> describe(RankingUpdate update) {
        return update.getEntries().stream().map(AggregatorTopologyTest::describe).toList();
    }

    private static String describe(RankingEntry e) {
        return e.getComponent() + " " + e.getCompression() + " " + (e.getComplete() ? "complete" : "incomplete") + " "
                + e.getFdtm();
    }

    private static <T> T single(List<T> list) {
        assertEquals(1, list.size(), list.toString());
        return list.get(0);
    }

    private static <T> T last(List<T> list) {
        assertFalse(list.isEmpty());
        return list.get(list.size() - 1);
    }

    private static <K, V> List<V> values(List<TestRecord<K, V>> records) {
        return records.stream().map(TestRecord::value).toList();
    }
}
