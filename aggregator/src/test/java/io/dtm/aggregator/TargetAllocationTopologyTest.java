package io.dtm.aggregator;

import io.dtm.planner.Allocations;
import io.dtm.planner.Rounds;
import io.dtm.planner.StopReason;
import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.AllocationRequest;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TextSums;
import io.dtm.schemas.avro.TrialKind;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static io.dtm.aggregator.AggregatorDriver.result;
import static io.dtm.aggregator.AggregatorDriver.sweep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A target allocation through the topology: the iterations' trials, decisions and measures, the text metrics and the
 * baselines the last step waits for, and its bad input; the planner's functions are the reference for what is decided.
 */
class TargetAllocationTopologyTest {
    private final AggregatorDriver agg = new AggregatorDriver();

    /** The text metrics shard 0 of a schedule trial reports here. */
    private static final TextSums TEXT = new TextSums(30L, 75.0, 1.5, 24L);
    /** A valid global baseline for a (100 parameters) and b (300) at 0.5: 20 + 180 of 400 zeroed. */
    private static final List<ScheduleEntry> GLOBAL = List.of(new ScheduleEntry("a", "prune:0.2"),
            new ScheduleEntry("b", "prune:0.6"));

    @AfterEach
    void close() {
        agg.close();
    }

    /** The driver's sweep (a, b; 4 prompts in shards of 2; 8 tokens) to 0.5 in 2 iterations, with a text. */
    private static SweepRequest.Builder target(String metric) {
        return sweep().setTargetSparsity(0.5).setAllocation(new AllocationRequest(2, metric,
                new ArrayList<>(List.of("one document", "another document")), 16));
    }

    /** FDT 8·(1 − s) at sparsity s for every prompt, but 0 for the last prompt of b's trials below 1. */
    private static int[] fdts(ComponentTrial shard) {
        double s = Double.parseDouble(shard.getCompression().substring("prune:".length()));
        int[] fdt = IntStream.range(0, shard.getPrompts().size()).map(i -> (int) Math.round(8 * (1 - s))).toArray();
        if (shard.getComponent().equals("b") && shard.getShard() == 1) {
            fdt[fdt.length - 1] = 0;
        }
        return fdt;
    }

    @Test
    void iterationsAreDecidedMeasuredAndTheLastStepWaitsForBothBaselines() {
        SweepRequest sweep = target("fdtm").build();
        agg.start(sweep);
        assertTrue(agg.trials.isEmpty(), "round 0 and the baselines are the publisher's");

        // iteration 1: 3 trials for each of a and b on the empty schedule
        List<ComponentTrial> round0 = Allocations.candidates(sweep, 0, List.of());
        assertEquals(12, round0.size());
        reportCandidates(round0);
        Rounds.Decision expected0 = Allocations.decide(sweep, 0, null, fullFdts(round0));
        List<ComponentTrial> measure0 = agg.trials.readValuesToList();
        assertEquals(expected0.measure(), measure0);
        assertEquals(List.of("one document", "another document"), measure0.get(0).getText());
        assertEquals(List.of(), measure0.get(1).getText());

        reportMeasure(measure0, 7, 5);
        ScheduleStep step0 = agg.steps.readValue();
        assertEquals(expected0.step().getSchedule(), step0.getSchedule());
        assertEquals(0.25, step0.getAllocation().getIterationTarget());
        assertEquals(expected0.step().getAllocation().getThreshold(), step0.getAllocation().getThreshold());
        assertEquals(6.0, step0.getFdtm(), "7, 7 on shard 0 and 5, 5 on shard 1");
        assertEquals(6.0, step0.getAllocation().getMetric());
        assertEquals(TEXT, step0.getText());
        assertFalse(step0.getLast());

        // iteration 2 from the committed sparsities; the baselines come in meanwhile
        List<ComponentTrial> round1 = agg.trials.readValuesToList();
        assertEquals(Allocations.candidates(sweep, 1, step0.getSchedule()), round1);
        reportBaselines(sweep);
        assertTrue(agg.steps.isEmpty());
        reportCandidates(round1);
        List<ComponentTrial> measure1 = agg.trials.readValuesToList();
        assertEquals(Allocations.decide(sweep, 1, step0, fullFdts(round1)).measure(), measure1);
        reportMeasure(measure1, 4, 4);

        ScheduleStep last = agg.steps.readValue();
        assertTrue(last.getLast());
        assertEquals(StopReason.TARGET_SPARSITY.code(), last.getStopReason());
        assertTrue(last.getOverallSparsity() >= 0.5);
        assertEquals(List.of("uniform", "global"), last.getBaselines().stream().map(b -> b.getName()).toList());
        assertEquals(Allocations.uniformSchedule(sweep), last.getBaselines().get(0).getSchedule());
        assertEquals(GLOBAL, last.getBaselines().get(1).getSchedule());
        assertEquals(0.5, last.getBaselines().get(1).getOverallSparsity(), 1e-12);
        assertEquals(3.0, last.getBaselines().get(1).getFdtm());
        assertEquals(TEXT, last.getBaselines().get(1).getText());
        assertTrue(agg.trials.isEmpty());
        assertTrue(agg.deadLetters.isEmpty());
    }

    @Test
    void theLastMeasureWaitsForBaselinesThatComeLater() {
        SweepRequest sweep = target("fdtm").setAllocation(new AllocationRequest(1, "fdtm", new ArrayList<>(), 16))
                .build();
        agg.start(sweep);
        reportCandidates(Allocations.candidates(sweep, 0, List.of()));
        List<ComponentTrial> measure = agg.trials.readValuesToList();
        assertEquals(List.of(), measure.get(0).getText(), "a sweep without text sends none");
        agg.reportTrial(measure, 6);
        assertTrue(agg.steps.isEmpty(), "the last step waits for the baselines");

        List<ComponentTrial> baselines = Allocations.baselines(sweep);
        agg.results.pipeInput(key(baselines.get(0)), baseline(baselines.get(0), Allocations.uniformSchedule(sweep), 4));
        agg.results.pipeInput(key(baselines.get(1)), baseline(baselines.get(1), Allocations.uniformSchedule(sweep), 4));
        agg.results.pipeInput(key(baselines.get(2)), baseline(baselines.get(2), GLOBAL, 5));
        assertTrue(agg.steps.isEmpty());
        agg.results.pipeInput(key(baselines.get(3)), baseline(baselines.get(3), GLOBAL, 5));
        ScheduleStep last = agg.steps.readValue();
        assertTrue(last.getLast());
        assertEquals(6.0, last.getFdtm());
        assertEquals(List.of(4.0, 5.0), last.getBaselines().stream().map(b -> b.getFdtm()).toList());
        assertNull(last.getText());
        agg.results.pipeInput(key(baselines.get(3)), baseline(baselines.get(3), GLOBAL, 5));
        assertTrue(agg.steps.isEmpty(), "a redelivered baseline publishes nothing again");
        assertTrue(agg.deadLetters.isEmpty());
    }

    /**
     * fdt-q:0 is the lowest FDT of a trial's prompts, which for b is on its second shard: the decision is the planner's
     * on all prompts, not on one shard's.
     */
    @Test
    void aQuantileIsTakenOverEveryShardOfATrial() {
        SweepRequest sweep = target("fdt-q:0").build();
        agg.start(sweep);
        List<ComponentTrial> round0 = Allocations.candidates(sweep, 0, List.of());
        reportCandidates(round0);
        Map<String, int[]> firstShards = new HashMap<>();
        round0.stream().filter(t -> t.getShard() == 0).forEach(t -> firstShards.put(t.getTrialId(), fdts(t)));
        List<ComponentTrial> measure = agg.trials.readValuesToList();
        assertEquals(Allocations.decide(sweep, 0, null, fullFdts(round0)).measure(), measure);
        assertFalse(Allocations.decide(sweep, 0, null, firstShards).measure().equals(measure),
                "one shard's prompts alone would decide otherwise");
    }

    @Test
    void badTargetSweepsAreDeadLetteredNamingTheField() {
        agg.start(sweep().setSweepId("t-high").setTargetSparsity(1.5).setAllocation(new AllocationRequest(2, "fdtm",
                new ArrayList<>(), 16)).build());
        assertTrue(agg.deadLetters.readValue().getReason()
                .contains("targetSparsity must be within (0, 1) for a target allocation, got 1.5"));
        agg.start(sweep().setSweepId("t-k0").setTargetSparsity(0.5).setAllocation(new AllocationRequest(0, "fdtm",
                new ArrayList<>(), 16)).build());
        assertTrue(agg.deadLetters.readValue().getReason().contains("allocation.iterations must be >= 1, got 0"));
        assertTrue(agg.steps.isEmpty());
    }

    @Test
    void resultsThatBreakTheTextOrBaselineContractAreDeadLettered() {
        SweepRequest sweep = target("fdtm").build();
        agg.start(sweep);
        ComponentTrial candidate = Allocations.candidates(sweep, 0, List.of()).get(0);
        List<ComponentTrial> baselines = Allocations.baselines(sweep);

        agg.results.pipeInput(key(candidate), DivergenceResult.newBuilder(result(candidate, fdts(candidate)))
                .setText(TEXT).build());
        assertReason("has text metrics but was sent no text");
        agg.results.pipeInput(key(baselines.get(0)), DivergenceResult.newBuilder(
                baseline(baselines.get(0), Allocations.uniformSchedule(sweep), 4)).setText(null).build());
        assertReason("has no text metrics, but was sent the sweep's text");
        agg.results.pipeInput(key(baselines.get(0)), DivergenceResult.newBuilder(
                baseline(baselines.get(0), Allocations.uniformSchedule(sweep), 4))
                .setText(new TextSums(10L, 1.0, 0.0, 11L)).build());
        assertReason("are not sums over at least one predicted token");
        agg.results.pipeInput(key(baselines.get(2)), baseline(baselines.get(2),
                List.of(new ScheduleEntry("a", "prune:0.5"), new ScheduleEntry("b", "prune:0.6")), 4));
        assertReason("is not the target's 0.5");
        agg.results.pipeInput(key(baselines.get(2)), baseline(baselines.get(2), GLOBAL, 4));
        agg.results.pipeInput(key(baselines.get(3)), baseline(baselines.get(3),
                List.of(new ScheduleEntry("a", "prune:0.8"), new ScheduleEntry("b", "prune:0.4")), 4));
        assertReason("shard 1 of the global baseline scored another schedule than shard 0");
        agg.results.pipeInput(key(baselines.get(1)), baseline(baselines.get(1), GLOBAL, 4));
        assertReason("the uniform baseline scored another schedule");

        SweepRequest greedy = sweep().setSweepId("greedy").build();
        agg.start(greedy);
        ComponentTrial foreign = ComponentTrial.newBuilder(baselines.get(1)).setSweepId("greedy").build();
        agg.results.pipeInput(key(foreign), baseline(foreign, Allocations.uniformSchedule(sweep), 4));
        assertReason("sweep greedy is greedy: it has no baselines");
        assertTrue(agg.steps.isEmpty());
    }

    @Test
    void aBaselineAWorkerCannotScoreFailsTheSweepInItsLatestRound() {
        SweepRequest sweep = target("fdtm").build();
        agg.start(sweep);
        reportCandidates(Allocations.candidates(sweep, 0, List.of()));
        reportMeasure(agg.trials.readValuesToList(), 7, 7);
        assertEquals(0, agg.steps.readValue().getRound());
        ComponentTrial global = Allocations.baselines(sweep).get(2);
        agg.deadLetterInput.pipeInput(key(global), agg.workerLetter(global,
                "IllegalArgumentException: the text of trial x (2 lines, window 16): the text has no line of at least"
                        + " 2 tokens: nothing to score"));
        ScheduleStep failed = agg.steps.readValue();
        assertEquals(1, failed.getRound());
        assertEquals(StopReason.FAILED.code(), failed.getStopReason());
        assertTrue(failed.getFailure().contains("(global baseline)") && failed.getFailure().contains("no line of at"
                + " least 2 tokens"), failed.getFailure());
    }

    /**
     * cumulative-floor:6 over int8 candidates a and b: both together score 5 (fails), a alone 7 (holds): a is
     * committed with the FDTM its probe measured, and no further measure is needed.
     */
    @Test
    void cumulativeFloorMeasuresPrefixesOneAfterTheOther() {
        SweepRequest sweep = sweep().setPruneStep(0).setInt8(true).setRounds(1).setCommitRule("cumulative-floor:6")
                .build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.reportTrial(AggregatorTopologyTest.shards(round0, "a"), 8);
        agg.reportTrial(AggregatorTopologyTest.shards(round0, "b"), 7);

        List<ComponentTrial> all = agg.trials.readValuesToList();
        assertEquals(List.of(new ScheduleEntry("a", "int8_rowwise"), new ScheduleEntry("b", "int8_rowwise")),
                all.get(0).getSchedule());
        agg.reportTrial(all, 5);
        assertTrue(agg.steps.isEmpty());
        List<ComponentTrial> first = agg.trials.readValuesToList();
        assertEquals(List.of(new ScheduleEntry("a", "int8_rowwise")), first.get(0).getSchedule());
        agg.reportTrial(all, 5);
        assertTrue(agg.trials.isEmpty() && agg.steps.isEmpty(), "a redelivered probe changes nothing");
        assertReason("is not the schedule measure of round 0");
        assertReason("is not the schedule measure of round 0");

        agg.reportTrial(first, 7);
        ScheduleStep step = agg.steps.readValue();
        assertEquals(List.of(new ScheduleEntry("a", "int8_rowwise")), step.getSchedule());
        assertEquals(7.0, step.getFdtm());
        assertEquals(0.25, step.getInt8Share());
        assertTrue(step.getLast());
        assertTrue(agg.trials.isEmpty());
    }

    private void reportCandidates(List<ComponentTrial> shards) {
        shards.forEach(t -> agg.report(t, fdts(t)));
    }

    /** Shard 0 scores {@code fdt0} with the text metrics, shard 1 {@code fdt1}. */
    private void reportMeasure(List<ComponentTrial> measure, int fdt0, int fdt1) {
        for (ComponentTrial t : measure) {
            int fdt = t.getShard() == 0 ? fdt0 : fdt1;
            DivergenceResult r = result(t, IntStream.range(0, t.getPrompts().size()).map(i -> fdt).toArray());
            agg.results.pipeInput(key(t), DivergenceResult.newBuilder(r)
                    .setText(t.getText().isEmpty() ? null : TEXT).build());
        }
    }

    private void reportBaselines(SweepRequest sweep) {
        for (ComponentTrial t : Allocations.baselines(sweep)) {
            agg.results.pipeInput(key(t), baseline(t, t.getComponent().equals("uniform") ? t.getSchedule() : GLOBAL,
                    t.getComponent().equals("uniform") ? 2 : 3));
        }
    }

    /** A baseline shard as a worker reports it: the schedule it scored, and the text metrics on the shard sent text. */
    private static DivergenceResult baseline(ComponentTrial t, List<ScheduleEntry> scored, int fdt) {
        return DivergenceResult.newBuilder(result(t, IntStream.range(0, t.getPrompts().size()).map(i -> fdt).toArray()))
                .setSchedule(new ArrayList<>(scored)).setText(t.getText().isEmpty() ? null : TEXT).build();
    }

    /** Every trial's FDTs over all its shards, in prompt order, as {@link #fdts} reports them. */
    private static Map<String, int[]> fullFdts(List<ComponentTrial> shards) {
        Map<String, int[]> full = new HashMap<>();
        for (ComponentTrial t : shards) {
            int[] fdt = fdts(t);
            full.merge(t.getTrialId(), fdt, (a, b) -> t.getShard() == 0 ? concat(b, a) : concat(a, b));
        }
        return full;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    private void assertReason(String expected) {
        DeadLetter letter = agg.deadLetters.readValue();
        assertTrue(letter.getReason().contains(expected), letter.getReason());
    }

    private static String key(ComponentTrial t) {
        return Topics.shardKey(t.getTrialId(), t.getShard());
    }
}
