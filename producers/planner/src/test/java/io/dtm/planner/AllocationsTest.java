package io.dtm.planner;

import io.dtm.planner.TargetAllocation.Component;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.AllocationRequest;
import io.dtm.schemas.avro.BaselineMeasure;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TextSums;
import io.dtm.schemas.avro.TrialKind;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToIntFunction;

import static io.dtm.planner.Messages.assertMessage;
import static io.dtm.planner.TestSweeps.entry;
import static io.dtm.planner.TestSweeps.target;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AllocationsTest {

    private static final TextSums TEXT = new TextSums(40L, 80.0, 2.0, 30L);

    /** a, b, c (100, 300, 600 parameters), T = 0.5, K = 2: round 0 aims at 0.25, Δ = 0.25, amounts 0.125, 0.375, 1. */
    @Test
    void roundZeroPlansUpToThreeTrialsPerComponentOnTheEmptySchedule() {
        SweepRequest s = target().build();
        List<ComponentTrial> shards = Allocations.candidates(s, 0, List.of());
        assertEquals(9 * 3, shards.size(), "9 trials of 3 shards (10 prompts, 4 a shard)");
        Map<String, List<String>> byComponent = new LinkedHashMap<>();
        for (ComponentTrial t : shards) {
            assertEquals(TrialKind.CANDIDATE, t.getKind());
            assertEquals(9, t.getTrialsInRound());
            assertEquals(List.of(), t.getSchedule());
            assertEquals(List.of(), t.getText(), "candidates carry no text");
            assertEquals(TrialPlanner.trialId(s.getSweepId(), 0, TrialKind.CANDIDATE, t.getComponent(),
                    t.getCompression(), List.of()), t.getTrialId());
            if (t.getShard() == 0) {
                byComponent.computeIfAbsent(t.getComponent(), k -> new java.util.ArrayList<>()).add(t.getCompression());
            }
        }
        List<String> amounts = List.of("prune:0.125", "prune:0.375", "prune:1.0");
        assertEquals(Map.of("a", amounts, "b", amounts, "c", amounts), byComponent);
    }

    @Test
    void theSweepStartsWithRoundZeroAndBothBaselinesTheTextOnTheirFirstShard() {
        SweepRequest s = target().build();
        List<ComponentTrial> first = Rounds.first(s);
        List<ComponentTrial> baselines = first.stream().filter(t -> t.getKind() == TrialKind.BASELINE).toList();
        assertEquals(Allocations.candidates(s, 0, List.of()), first.subList(0, 27));
        assertEquals(Allocations.baselines(s), baselines);
        assertEquals(6, baselines.size());
        List<ScheduleEntry> uniform = List.of(entry("a", "prune:0.5"), entry("b", "prune:0.5"), entry("c", "prune:0.5"));
        assertEquals(uniform, Allocations.uniformSchedule(s));
        for (ComponentTrial t : baselines) {
            assertEquals(uniform, t.getSchedule(), "the global trial names the components at the uniform sparsity too");
            assertEquals(Allocations.baselineTrialId(s, t.getComponent()), t.getTrialId());
            assertEquals(t.getShard() == 0 ? s.getAllocation().getText() : List.of(), t.getText());
            assertEquals(t.getShard() == 0 ? 16 : 0, t.getTextWindow());
        }
        assertEquals(List.of("uniform", "global"), baselines.stream().filter(t -> t.getShard() == 0)
                .map(ComponentTrial::getComponent).toList());
        assertFalse(Allocations.baselineTrialId(s, "uniform").equals(Allocations.baselineTrialId(s, "global")));
        assertMessage("unknown baseline 'median'", () -> Allocations.baselineTrialId(s, "median"));
    }

    @Test
    void aDecidedIterationCommitsWhatTheTargetAllocationCommitsAndHasItMeasured() {
        SweepRequest s = target().build();
        Map<String, int[]> fdts = fdts(s, 0, List.of(), t -> switch (t.getComponent()) {
            case "a" -> t.getCompression().equals("prune:0.125") ? 7 : t.getCompression().equals("prune:0.375") ? 5 : 0;
            case "b" -> t.getCompression().equals("prune:0.125") ? 8 : t.getCompression().equals("prune:0.375") ? 6 : 1;
            default -> t.getCompression().equals("prune:0.125") ? 8 : t.getCompression().equals("prune:0.375") ? 7 : 2;
        });
        Rounds.Decision d = Allocations.decide(s, 0, null, fdts);

        TargetAllocation.Plan plan = new TargetAllocation(0.5, 2).plan(1, List.of(new Component("a", 100, 0),
                new Component("b", 300, 0), new Component("c", 600, 0)));
        Map<TargetAllocation.Trial, Double> measured = new HashMap<>();
        for (TargetAllocation.Trial t : plan.trials()) {
            String id = TrialPlanner.trialId(s.getSweepId(), 0, TrialKind.CANDIDATE, t.component(),
                    t.compression().toString(), List.of());
            measured.put(t, (double) fdts.get(id)[0]);
        }
        TargetAllocation.Commit commit = plan.commit(8, measured);
        List<ScheduleEntry> expected = commit.components().stream().filter(c -> c.sparsity() > 0)
                .map(c -> entry(c.name(), c.compression().toString())).toList();
        assertEquals(expected, d.step().getSchedule());
        assertEquals(expected, d.step().getCommitted(), "every component moved from 0");
        assertEquals(commit.overallSparsity(), d.step().getOverallSparsity());
        assertTrue(d.step().getOverallSparsity() >= 0.25);
        assertEquals(0.25, d.step().getAllocation().getIterationTarget());
        assertEquals(commit.threshold(), d.step().getAllocation().getThreshold());
        assertFalse(d.step().getLast());

        assertEquals(3, d.measure().size());
        for (ComponentTrial m : d.measure()) {
            assertEquals(TrialKind.SCHEDULE, m.getKind());
            assertEquals(expected, m.getSchedule());
            assertEquals(m.getShard() == 0 ? s.getAllocation().getText() : List.of(), m.getText());
        }
        assertEquals(d, Allocations.decide(s, 0, null, fdts), "a replay decides the same");
    }

    /** fdt-q:0.05 over all 10 prompts: one weak prompt of 10 weighs on the quantile far more than on the mean. */
    @Test
    void aQuantileMetricIsTakenOverEveryPromptOfATrial() {
        SweepRequest fdtm = target().build();
        SweepRequest quantile = target().setAllocation(AllocationRequest.newBuilder(fdtm.getAllocation())
                .setMetric("fdt-q:0.05").build()).build();
        Map<String, int[]> fdts = new HashMap<>();
        for (ComponentTrial t : Allocations.candidates(fdtm, 0, List.of())) {
            int[] fdt = new int[10];
            Arrays.fill(fdt, t.getCompression().equals("prune:1.0") ? 0 : 8);
            if (t.getComponent().equals("c") && !t.getCompression().equals("prune:1.0")) {
                fdt[9] = 0; // c's damage shows in one prompt only
            }
            fdts.put(t.getTrialId(), fdt);
        }
        double cByMean = sparsity(Allocations.decide(fdtm, 0, null, fdts).step(), "c");
        double cByQuantile = sparsity(Allocations.decide(quantile, 0, null, fdts).step(), "c");
        assertTrue(cByQuantile < cByMean, "the quantile sees c's weak prompt: " + cByQuantile + " vs " + cByMean);
    }

    @Test
    void aMeasuredIterationLeadsToTheNextUntilTheKthStopsAtTheTarget() {
        SweepRequest s = target().build();
        Rounds.Decision d0 = Allocations.decide(s, 0, null, fdts(s, 0, List.of(), AllocationsTest::losesWithSparsity));
        int[] fdt = {8, 8, 7, 6, 8, 8, 8, 8, 8, 1};
        DivergenceSummary summary = DivergenceSummary.of(fdt, new double[10], 8);
        Rounds.Measured m0 = Allocations.measured(s, d0.step(), summary, fdt, TEXT);
        ScheduleStep step0 = m0.step();
        assertFalse(step0.getLast());
        assertEquals(summary.fdtm(), step0.getFdtm());
        assertEquals(summary.fdtm(), step0.getAllocation().getMetric());
        assertEquals(d0.step().getAllocation().getThreshold(), step0.getAllocation().getThreshold());
        assertEquals(TEXT, step0.getText());
        assertEquals(Allocations.candidates(s, 1, step0.getSchedule()), m0.nextRound());
        // round 1 plans from the committed sparsities: a's trials start above its s_a
        double sa = sparsity(step0, "a");
        assertTrue(m0.nextRound().stream().filter(t -> t.getComponent().equals("a"))
                .allMatch(t -> Double.parseDouble(t.getCompression().substring(6)) > sa));

        Rounds.Decision d1 = Allocations.decide(s, 1, step0, fdts(s, 1, step0.getSchedule(),
                AllocationsTest::losesWithSparsity));
        assertEquals(0.5, d1.step().getAllocation().getIterationTarget());
        Rounds.Measured m1 = Allocations.measured(s, d1.step(), summary, fdt, null);
        assertTrue(m1.step().getLast());
        assertEquals(StopReason.TARGET_SPARSITY.code(), m1.step().getStopReason());
        assertEquals(List.of(), m1.nextRound());
        assertTrue(m1.step().getOverallSparsity() >= 0.5);
        assertNull(m1.step().getText());
    }

    /** Nothing costs anything: at f = m(S) every component is zeroed whole, overshooting T in the first iteration. */
    @Test
    void reachingTheTargetBeforeTheLastIterationStops() {
        SweepRequest s = target().build();
        Rounds.Decision d = Allocations.decide(s, 0, null, fdts(s, 0, List.of(), t -> 8));
        assertEquals(1.0, d.step().getOverallSparsity());
        int[] fdt = new int[10];
        Rounds.Measured m = Allocations.measured(s, d.step(), DivergenceSummary.of(fdt, new double[10], 8), fdt, TEXT);
        assertTrue(m.step().getLast());
        assertEquals(StopReason.TARGET_SPARSITY.code(), m.step().getStopReason());
    }

    @Test
    void aMissingResultIsNamed() {
        SweepRequest s = target().build();
        Map<String, int[]> fdts = fdts(s, 0, List.of(), t -> 6);
        String missing = Allocations.candidates(s, 0, List.of()).get(0).getTrialId();
        fdts.remove(missing);
        assertMessage("no result for trial " + missing + " (a prune:0.125)", () -> Allocations.decide(s, 0, null, fdts));
    }

    @Test
    void aBaselineIsMeasuredLikeAnIterationAndGoesOnTheLastStep() {
        SweepRequest s = target().setAllocation(AllocationRequest.newBuilder(target().build().getAllocation())
                .setMetric("fdt-q:0").build()).build();
        List<ScheduleEntry> global = List.of(entry("c", "prune:0.6"), entry("a", "prune:0.2"), entry("b", "prune:0.4"));
        int[] fdt = {8, 8, 7, 6, 8, 8, 8, 8, 8, 3};
        DivergenceSummary summary = DivergenceSummary.of(fdt, new double[10], 8);
        BaselineMeasure b = Allocations.baseline(s, Allocations.GLOBAL, global, summary, fdt, TEXT);
        assertEquals(TrialPlanner.sorted(global), b.getSchedule());
        assertEquals(0.5, b.getOverallSparsity(), 1e-12);
        assertEquals(summary.fdtm(), b.getFdtm());
        assertEquals(3.0, b.getMetric(), "the sweep's metric: the 0-quantile, the lowest FDT");
        assertEquals(TEXT, b.getText());

        BaselineMeasure u = Allocations.baseline(s, Allocations.UNIFORM, Allocations.uniformSchedule(s), summary, fdt,
                null);
        Rounds.Decision d = Allocations.decide(s, 0, null, fdts(s, 0, List.of(), t -> 8));
        ScheduleStep last = Allocations.measured(s, d.step(), summary, fdt, null).step();
        assertEquals(List.of(u, b), Allocations.withBaselines(last, List.of(u, b)).getBaselines());
        assertMessage("expected the baselines [uniform, global]", () -> Allocations.withBaselines(last, List.of(b, u)));
        assertMessage("not round 0", () -> Allocations.withBaselines(d.step(), List.of(u, b)));
    }

    @Test
    void aGlobalScheduleMustPruneExactlyTheSweepsComponentsToTheTarget() {
        SweepRequest s = target().build();
        assertNull(Allocations.globalScheduleProblem(s,
                List.of(entry("a", "prune:0.2"), entry("b", "prune:0.4"), entry("c", "prune:0.6"))));
        assertTrue(Allocations.globalScheduleProblem(s, List.of(entry("a", "prune:0.2"), entry("b", "prune:0.4")))
                .contains("exactly the sweep's 3 components, got 2"));
        assertTrue(Allocations.globalScheduleProblem(s, List.of(entry("a", "int8_rowwise"), entry("b", "prune:0.4"),
                entry("c", "prune:0.6"))).contains("must prune a, got int8_rowwise"));
        assertTrue(Allocations.globalScheduleProblem(s, List.of(entry("a", "prune:0.3"), entry("b", "prune:0.4"),
                entry("c", "prune:0.6"))).contains("is not the target's 0.5"));
        assertTrue(Allocations.globalScheduleProblem(s, List.of(entry("a", "prune:x"), entry("b", "prune:0.4"),
                entry("c", "prune:0.6"))).contains("invalid sparsity 'x'"));
    }

    @Test
    void aGreedySweepIsNoTargetAllocation() {
        SweepRequest greedy = TestSweeps.sweep().build();
        assertFalse(Allocations.isTarget(greedy));
        assertTrue(Allocations.isTarget(target().build()));
        assertEquals(TrialPlanner.candidates(greedy, 0, List.of()), Rounds.first(greedy));
        assertMessage("is not a target allocation", () -> Allocations.allocation(greedy));
    }

    /** Every prompt of each of the round's trials scores {@code fdt.applyAsInt(trial)}. */
    @Test
    void kindsGiveEachComponentTrialsInEveryKindAndTheScheduleCarriesTheKindsCommitted() {
        SweepRequest s = target().setKinds(new ArrayList<>(List.of("prune", "wanda", "nm:1:2"))).build();
        List<ComponentTrial> shards = Allocations.candidates(s, 0, List.of());
        assertEquals(List.of("prune:0.125", "wanda:0.125", "prune:0.375", "wanda:0.375", "nm:1:2", "prune:1.0"),
                shards.stream().filter(t -> t.getComponent().equals("a") && t.getShard() == 0)
                        .map(ComponentTrial::getCompression).toList());
        assertEquals(3 * 6, shards.stream().map(ComponentTrial::getTrialId).distinct().count());

        // a keeps its FDT best at nm:1:2, b under wanda, c under prune
        Map<String, int[]> fdts = fdts(s, 0, List.of(), t -> {
            String kind = t.getCompression().substring(0, t.getCompression().indexOf(':'));
            boolean best = switch (t.getComponent()) {
                case "a" -> kind.equals("nm");
                case "b" -> kind.equals("wanda");
                default -> kind.equals("prune");
            };
            return t.getCompression().equals("prune:1.0") ? 0 : best ? 7 : 2;
        });
        Rounds.Decision d = Allocations.decide(s, 0, null, fdts);
        Map<String, String> schedule = new HashMap<>();
        d.step().getSchedule().forEach(e -> schedule.put(e.getComponent(), e.getCompression()));
        assertEquals("nm:1:2", schedule.get("a"));
        assertTrue(schedule.get("b").startsWith("wanda:"), schedule.toString());
        assertTrue(schedule.get("c").startsWith("prune:"), schedule.toString());
        assertTrue(d.step().getOverallSparsity() >= 0.25, "t_1 reached: " + d.step().getOverallSparsity());

        // the next round plans from that schedule: a is not offered nm:1:2 again
        List<ComponentTrial> next = Allocations.candidates(s, 1, d.step().getSchedule());
        assertTrue(next.stream().filter(t -> t.getComponent().equals("a")).noneMatch(t -> t.getCompression()
                .equals("nm:1:2")));
        assertTrue(next.stream().anyMatch(t -> t.getComponent().equals("a") && t.getCompression().startsWith("wanda:")));
    }

    private static Map<String, int[]> fdts(SweepRequest s, int round, List<ScheduleEntry> schedule,
                                           ToIntFunction<ComponentTrial> fdt) {
        Map<String, int[]> fdts = new HashMap<>();
        for (ComponentTrial t : Allocations.candidates(s, round, schedule)) {
            int[] values = new int[s.getPrompts().size()];
            Arrays.fill(values, fdt.applyAsInt(t));
            fdts.put(t.getTrialId(), values);
        }
        return fdts;
    }

    /** FDT 8·(1 − s) at sparsity s, rounded. */
    private static int losesWithSparsity(ComponentTrial t) {
        return (int) Math.round(8 * (1 - Double.parseDouble(t.getCompression().substring("prune:".length()))));
    }

    private static double sparsity(ScheduleStep step, String component) {
        return step.getSchedule().stream().filter(e -> e.getComponent().equals(component))
                .mapToDouble(e -> Double.parseDouble(e.getCompression().substring("prune:".length())))
                .findFirst().orElse(0);
    }
}
