package io.dtm.planner;

import io.dtm.planner.TargetAllocation.Commit;
import io.dtm.planner.TargetAllocation.Component;
import io.dtm.planner.TargetAllocation.Plan;
import io.dtm.planner.TargetAllocation.Trial;
import io.dtm.schemas.CompressionSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static io.dtm.planner.Messages.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TargetAllocationTest {

    /** Components a, b, c of 100, 300 and 600 parameters, unpruned. */
    private static final List<Component> DENSE = List.of(new Component("a", 100, 0), new Component("b", 300, 0),
            new Component("c", 600, 0));

    @Test
    void iterationTargetsStepEvenlyToTExactly() {
        TargetAllocation allocation = new TargetAllocation(0.5, 4);
        assertEquals(List.of(0.125, 0.25, 0.375, 0.5),
                List.of(allocation.iterationTarget(1), allocation.iterationTarget(2), allocation.iterationTarget(3),
                        allocation.iterationTarget(4)));
        for (double target : new double[] {0.1, 0.3, 0.7, 0.9, 0.123, 0.9999}) {
            for (int k = 1; k <= 12; k++) {
                assertEquals(target, new TargetAllocation(target, k).iterationTarget(k), "T=" + target + " K=" + k);
            }
        }
    }

    @Test
    void plansThreeAmountsPerComponentAndOneTrialForTheSchedule() {
        Plan plan = new TargetAllocation(0.5, 2).plan(1, DENSE);
        assertEquals(0.25, plan.iterationTarget());
        assertEquals(0, plan.overallSparsity());
        assertEquals(0.25, plan.delta());
        List<Trial> expected = new ArrayList<>();
        for (String c : List.of("a", "b", "c")) {
            expected.add(new Trial(c, 0.125, 0.125));
            expected.add(new Trial(c, 0.375, 0.375));
            expected.add(new Trial(c, 1, 1));
        }
        assertEquals(expected, plan.trials());
        assertEquals(10, plan.trialCount());
        assertEquals("prune:0.375", plan.trials().get(1).compression().toString());
    }

    /**
     * Hand-computed: with m(S) = 64 and the curves below, for f in (60, 62] a_a = (64 − f)/32,
     * a_b = 0.125 + (62 − f)/24, a_c = 0.125 + (63 − f)/12, so 1000·overall = 4237.5 − 65.625·f, which is 250 (t_1 =
     * 0.25) at f* = 3987.5/65.625 = 60.7619…
     */
    @Test
    void handComputedAllocationOfThreeComponentsOfDifferentSizes() {
        Plan plan = new TargetAllocation(0.5, 2).plan(1, DENSE);
        Map<Trial, Double> measured = measure(plan, Map.of(
                "a", new double[] {60, 40, 0},
                "b", new double[] {62, 56, 8},
                "c", new double[] {63, 60, 20}));
        Commit commit = plan.commit(64, measured);

        double fStar = 3987.5 / 65.625;
        double f = commit.threshold();
        assertTrue(f <= fStar && f > fStar - TargetAllocation.THRESHOLD_TOLERANCE, "f = " + f + ", f* = " + fStar);
        assertEquals(1, commit.iteration());
        assertEquals(0.25, commit.iterationTarget());
        assertRoundedUp(List.of((64 - f) / 32, 0.125 + (62 - f) / 24, 0.125 + (63 - f) / 12), commit);
        assertEquals(List.of("a", "b", "c"), commit.components().stream().map(Component::name).toList());
        assertEquals(List.of(100L, 300L, 600L), commit.components().stream().map(Component::params).toList());
        assertEquals(0.1012, commit.components().get(0).sparsity(), 2e-4);
        assertEquals(0.1766, commit.components().get(1).sparsity(), 2e-4);
        assertEquals(0.3115, commit.components().get(2).sparsity(), 2e-4);
        assertTrue(commit.overallSparsity() >= 0.25 && commit.overallSparsity() < 0.2502,
                "overall " + commit.overallSparsity());
        assertEquals(TargetAllocation.overallSparsity(commit.components()), commit.overallSparsity());
        assertEquals(plan.curves(64, measured), commit.curves());
    }

    /**
     * K = 1 reaches T in one iteration. Hand-computed: for f in (59, 60], with u = 60 − f, a_a = 0.15·(4 + u)/44,
     * a_b = 0.15 + 0.3·u/10 and a_c = 0.15 + 0.3·u, so 1000·overall = 15·(4 + u)/44 + 135 + 189·u, which is 300 at
     * u = (165 − 60/44)/(189 + 15/44).
     */
    @Test
    void singleIterationReachesTheTargetAtOnce() {
        Plan plan = new TargetAllocation(0.3, 1).plan(1, DENSE);
        assertEquals(0.3, plan.iterationTarget());
        assertEquals(List.of(0.15, 0.45, 1.0), plan.trials().stream().filter(t -> t.component().equals("c"))
                .map(Trial::sparsity).toList());
        Map<Trial, Double> measured = measure(plan, Map.of(
                "a", new double[] {20, 10, 0},
                "b", new double[] {60, 50, 0},
                "c", new double[] {60, 59, 0}));
        Commit result = plan.commit(64, measured);
        double u = (165 - 60.0 / 44) / (189 + 15.0 / 44);
        double fStar = 60 - u;
        assertTrue(result.threshold() <= fStar && result.threshold() > fStar - 1e-3, "f = " + result.threshold());
        double v = 60 - result.threshold();
        assertRoundedUp(List.of(0.15 * (4 + v) / 44, 0.15 + 0.03 * v, 0.15 + 0.3 * v), result);
        assertEquals(0.4093, sparsities(result).get(2), 2e-4);
        assertTrue(result.overallSparsity() >= 0.3 && result.overallSparsity() < 0.3002,
                "overall " + result.overallSparsity());
    }

    @Test
    void thresholdIsMOfSWhenAFreeComponentAloneReachesTheTarget() {
        Plan plan = new TargetAllocation(0.4, 2).plan(1, DENSE);
        // c (60% of the parameters) costs nothing even when zeroed: at f = m(S) it is pruned whole
        Map<Trial, Double> measured = measure(plan, Map.of(
                "a", new double[] {50, 40, 0},
                "b", new double[] {50, 40, 0},
                "c", new double[] {64, 64, 64}));
        Commit result = plan.commit(64, measured);
        assertEquals(64, result.threshold());
        assertEquals(List.of(0.0, 0.0, 1.0), sparsities(result));
        assertEquals(0.6, result.overallSparsity(), 1e-12);
    }

    /**
     * A flat stretch makes the overall sparsity jump: x (3 parts) holds 50 from a = 0.15 to 0.45. Just above f = 50,
     * x is near 0.15 and y (1 part) near 0.075, overall ≈ 0.13 < 0.3; at f = 50 x jumps to 0.45, overall 0.35625.
     */
    @Test
    void aFlatStretchOvershootsTheTargetAtItsLevel() {
        List<Component> components = List.of(new Component("x", 3, 0), new Component("y", 1, 0));
        Plan plan = new TargetAllocation(0.3, 1).plan(1, components);
        Map<Trial, Double> measured = measure(plan, Map.of("x", new double[] {50, 50, 10}, "y", new double[] {40, 30, 0}));
        Commit result = plan.commit(60, measured);
        assertTrue(result.threshold() <= 50 && result.threshold() > 50 - 1e-3, "f = " + result.threshold());
        assertEquals(0.45, sparsities(result).get(0), 1e-4 + 1e-5);
        assertEquals(0.075, sparsities(result).get(1), 1e-4 + 1e-5);
        assertEquals(0.35625, result.overallSparsity(), 2e-4);
    }

    @Test
    void cappedAmountsCoincideAndArePlannedOnce() {
        // o = (90 + 80)/1000 = 0.17, t_1 = 0.42, Δ = 0.25
        List<Component> components = List.of(new Component("p", 100, 0.9), new Component("q", 100, 0.8),
                new Component("r", 800, 0));
        Plan plan = new TargetAllocation(0.84, 2).plan(1, components);
        assertEquals(0.25, plan.delta(), 1e-12);
        List<Trial> trials = plan.trials();
        assertEquals(List.of("p", "q", "q", "r", "r", "r"), trials.stream().map(Trial::component).toList());
        assertEquals(List.of(1.0, 0.925, 1.0, 0.125, 0.375, 1.0), trials.stream().map(Trial::sparsity).toList());
        assertEquals(0.1, trials.get(0).amount(), 1e-12);
        assertEquals(0.125, trials.get(1).amount(), 1e-12);
        assertEquals(0.2, trials.get(2).amount(), 1e-12);
        assertEquals(7, plan.trialCount());

        Map<Trial, Double> measured = measure(plan, Map.of(
                "p", new double[] {30},
                "q", new double[] {50, 20},
                "r", new double[] {55, 40, 0}));
        Commit result = plan.commit(60, measured);
        assertEquals(List.of(new AllocationCurve.Point(0, 60), new AllocationCurve.Point(trials.get(0).amount(), 30)),
                result.curves().get(0).points());
        assertTrue(result.overallSparsity() >= 0.42);
        assertBisectionMatchesScan(plan, result);
    }

    @Test
    void amountsEqualOnTheGridArePlannedOnce() {
        // Δ = 0.00004: Δ/2 and 3Δ/2 both round up to the first prune step
        Plan plan = new TargetAllocation(0.00004, 1).plan(1, List.of(new Component("a", 10, 0)));
        assertEquals(List.of(new Trial("a", 0.0001, 0.0001), new Trial("a", 1, 1)), plan.trials());
    }

    @Test
    void aVanishingDeltaPlansOnlyTheWholeMatrixZero() {
        // t_1 = 0.25 + 1e-12 over o = 0.25: Δ/2 and 3Δ/2 round back onto s_c, which is (0, m(S)) already
        Plan plan = new TargetAllocation(0.5 + 2e-12, 2).plan(1, List.of(new Component("a", 10, 0.25)));
        assertTrue(plan.delta() > 0);
        assertEquals(List.of(new Trial("a", 0.75, 1)), plan.trials());
    }

    @Test
    void aFullyPrunedComponentHasNoTrialsAndStaysPruned() {
        List<Component> components = List.of(new Component("gone", 500, 1), new Component("b", 500, 0));
        Plan plan = new TargetAllocation(0.8, 2).plan(2, components);
        assertEquals(0.3, plan.delta(), 1e-12);
        assertEquals(List.of("b", "b", "b"), plan.trials().stream().map(Trial::component).toList());
        Commit result = plan.commit(40, measure(plan, Map.of("b", new double[] {30, 10, 0})));
        assertEquals(List.of(new AllocationCurve.Point(0, 40)), result.curves().get(0).points());
        assertEquals(1.0, sparsities(result).get(0));
        // b needs 0.6: between 0.45 (10) and 1 (0), f = 10 − 10·0.15/0.55
        assertEquals(0.6, sparsities(result).get(1), 2e-4);
        assertTrue(result.overallSparsity() >= 0.8);
    }

    @Test
    void aScheduleAlreadyPastItsTargetPlansOnlyWholeZerosAndCommitsNothingCostly() {
        List<Component> components = List.of(new Component("a", 1, 0.5), new Component("b", 1, 0.5));
        Plan plan = new TargetAllocation(0.8, 2).plan(1, components);
        assertEquals(-0.1, plan.delta(), 1e-12);
        assertEquals(List.of(new Trial("a", 0.5, 1), new Trial("b", 0.5, 1)), plan.trials());
        Commit result = plan.commit(30, measure(plan, Map.of("a", new double[] {5}, "b", new double[] {0})));
        assertEquals(30, result.threshold());
        assertEquals(List.of(0.5, 0.5), sparsities(result));
        assertEquals(0.5, result.overallSparsity());
    }

    @Test
    void bisectionAgreesWithABruteForceScanOnRandomIterations() {
        Random random = new Random(2024);
        for (int run = 0; run < 40; run++) {
            List<Component> components = new ArrayList<>();
            int count = 2 + random.nextInt(4);
            for (int c = 0; c < count; c++) {
                double s = switch (random.nextInt(5)) {
                    case 0 -> 0;
                    case 1 -> 1;
                    default -> random.nextInt(5000) / 10_000.0;
                };
                components.add(new Component("c" + c, 1 + random.nextInt(1_000_000), s));
            }
            int iterations = 1 + random.nextInt(6);
            TargetAllocation allocation = new TargetAllocation(0.5 + random.nextInt(4900) / 10_000.0, iterations);
            Plan plan = allocation.plan(1 + random.nextInt(iterations), components);
            double scheduleMetric = 8 + random.nextInt(57);
            Map<Trial, Double> measured = new HashMap<>();
            // quarters make ties and flat stretches; some land above m(S)
            plan.trials().forEach(t -> measured.put(t, random.nextInt((int) (scheduleMetric + 4) * 4) / 4.0));
            Commit result = plan.commit(scheduleMetric, measured);
            assertBisectionMatchesScan(plan, result);
            assertTrue(result.overallSparsity() >= plan.iterationTarget() - 1e-9,
                    "overall " + result.overallSparsity() + " below t_i " + plan.iterationTarget());
            List<Double> exact = new ArrayList<>();
            for (int c = 0; c < count; c++) {
                exact.add(components.get(c).sparsity() + result.curves().get(c).amountAt(result.threshold()));
            }
            assertRoundedUp(exact, result);
            for (Trial t : plan.trials()) {
                assertOnGrid(t.sparsity());
                assertEquals(t.sparsity(), CompressionSpec.parse(t.compression().toString()).sparsity());
            }
        }
    }

    @Test
    void rejectsInvalidTargetsAndIterations() {
        for (double target : new double[] {0, 1, -0.1, 1.5, Double.NaN}) {
            assertMessage("target sparsity must be within (0, 1), got " + target, () -> new TargetAllocation(target, 4));
        }
        assertMessage("iterations must be >= 1, got 0", () -> new TargetAllocation(0.5, 0));
        assertMessage("iterations must be >= 1, got -2", () -> new TargetAllocation(0.5, -2));
        TargetAllocation allocation = new TargetAllocation(0.5, 4);
        assertMessage("iteration 0 is outside 1..4", () -> allocation.iterationTarget(0));
        assertMessage("iteration 5 is outside 1..4", () -> allocation.plan(5, DENSE));
        assertMessage("plan needs its target allocation", () -> new Plan(null, 1, DENSE));
    }

    @ParameterizedTest
    @ValueSource(longs = {0, -5})
    void rejectsComponentsWithoutParameters(long params) {
        assertMessage("component a has n_c = " + params + " parameters: must be > 0", () -> new Component("a", params, 0));
    }

    @ParameterizedTest
    @ValueSource(doubles = {-0.1, 1.1, Double.NaN})
    void rejectsSparsitiesOutsideZeroToOne(double sparsity) {
        assertMessage("component a has sparsity " + sparsity + ": must be within [0, 1]",
                () -> new Component("a", 10, sparsity));
    }

    @Test
    void rejectsMalformedComponentLists() {
        TargetAllocation allocation = new TargetAllocation(0.5, 4);
        assertMessage("component name is required", () -> new Component(" ", 10, 0));
        assertMessage("plan needs at least one component", () -> allocation.plan(1, List.of()));
        assertMessage("component a appears twice",
                () -> allocation.plan(1, List.of(new Component("a", 1, 0), new Component("a", 2, 0))));
        assertMessage("trial of a must add a sparsity > 0", () -> new Trial("a", 0, 0.5));
        assertMessage("trial of a must add a sparsity > 0", () -> new Trial("a", 0.1, 1.1));
    }

    @Test
    void rejectsMissingUnknownAndNonFiniteMeasurements() {
        Plan plan = new TargetAllocation(0.5, 2).plan(1, DENSE);
        Map<Trial, Double> measured = measure(plan, Map.of(
                "a", new double[] {60, 40, 0}, "b", new double[] {62, 56, 8}, "c", new double[] {63, 60, 20}));

        Map<Trial, Double> missing = new HashMap<>(measured);
        missing.remove(new Trial("b", 0.375, 0.375));
        assertMessage("missing measurement of b at prune:0.375 (iteration 1)", () -> plan.commit(64, missing));

        Map<Trial, Double> unknown = new HashMap<>(measured);
        unknown.put(new Trial("b", 0.5, 0.5), 50.0);
        assertMessage("is not a trial of iteration 1", () -> plan.commit(64, unknown));

        Map<Trial, Double> nan = new HashMap<>(measured);
        nan.put(new Trial("c", 1, 1), Double.NaN);
        assertMessage("measurement of c at prune:1.0 must be finite, got NaN", () -> plan.commit(64, nan));

        assertMessage("m(S) must be finite, got NaN", () -> plan.commit(Double.NaN, measured));
        List<AllocationCurve> curves = plan.curves(64, measured);
        assertMessage("2 curves for 3 components", () -> plan.threshold(curves.subList(0, 2)));
        assertMessage("curve 0 is of b, expected a",
                () -> plan.overallSparsityAt(List.of(curves.get(1), curves.get(0), curves.get(2)), 50));
    }

    /** The plan's trials of each component in order, measured as given (one metric per trial, ascending sparsity). */
    private static Map<Trial, Double> measure(Plan plan, Map<String, double[]> metrics) {
        Map<Trial, Double> measured = new HashMap<>();
        Map<String, Integer> next = new HashMap<>();
        for (Trial t : plan.trials()) {
            int k = next.merge(t.component(), 1, Integer::sum) - 1;
            measured.put(t, metrics.get(t.component())[k]);
        }
        assertEquals(metrics.values().stream().mapToInt(m -> m.length).sum(), measured.size(), "metrics per trial");
        return measured;
    }

    /** The largest f on a 1e-4 grid below m(S) whose overall sparsity reaches t_i is within the bisection's tolerance. */
    private static void assertBisectionMatchesScan(Plan plan, Commit result) {
        List<AllocationCurve> curves = result.curves();
        double hi = curves.get(0).points().get(0).metric();
        double lo = curves.stream().mapToDouble(AllocationCurve::minimum).min().orElseThrow();
        double scanned = lo;
        for (long k = 0; hi - k * 1e-4 >= lo; k++) {
            if (plan.overallSparsityAt(curves, hi - k * 1e-4) >= plan.iterationTarget()) {
                scanned = hi - k * 1e-4;
                break;
            }
        }
        double f = result.threshold();
        assertTrue(plan.overallSparsityAt(curves, f) >= plan.iterationTarget(), "f = " + f + " misses t_i");
        assertTrue(Math.abs(f - scanned) <= TargetAllocation.THRESHOLD_TOLERANCE, "bisection " + f + ", scan " + scanned);
    }

    /** Each committed sparsity is its exact {@code s_c + a_c(f)} rounded up to the 1e-4 grid. */
    private static void assertRoundedUp(List<Double> exact, Commit commit) {
        for (int c = 0; c < exact.size(); c++) {
            double s = commit.components().get(c).sparsity();
            assertOnGrid(s);
            assertTrue(s >= exact.get(c) - 1e-9 && s < exact.get(c) + 1e-4, "component " + c + ": " + s + " for "
                    + exact.get(c));
        }
    }

    private static List<Double> sparsities(Commit commit) {
        return commit.components().stream().map(Component::sparsity).toList();
    }

    private static void assertOnGrid(double sparsity) {
        assertEquals(Math.rint(sparsity * 10_000) / 10_000, sparsity, 0.0, sparsity + " is not a 1e-4 step");
    }

    private static final Kind WANDA = new Kind.Stepped("wanda");
    private static final Kind NM_1_2 = new Kind.Fixed(new CompressionSpec.NM(1, 2));

    @Test
    void eachKindAComponentMayTakeGetsItsOwnTrialsAndTheWholeMatrixZeroIsShared() {
        List<Kind> kinds = List.of(TargetAllocation.PRUNE, WANDA, NM_1_2);
        Plan plan = new TargetAllocation(0.5, 2).plan(1,
                List.of(new Component("a", 100, 0, TargetAllocation.PRUNE, kinds)));
        assertEquals(List.of("prune:0.125", "wanda:0.125", "prune:0.375", "wanda:0.375", "nm:1:2", "prune:1.0"),
                plan.trials().stream().map(t -> t.compression().toString()).toList());
        assertEquals(List.of(0.125, 0.125, 0.375, 0.375, 0.5, 1.0),
                plan.trials().stream().map(Trial::amount).toList());

        // a component already at nm:1:2 is not offered it again; its stepped kinds start from its sparsity
        // (Δ = 0.9 − 0.5: amounts 0.2 and 0.6, the second capped at the whole matrix zero)
        Plan later = new TargetAllocation(0.9, 2).plan(2, List.of(new Component("a", 100, 0.5, NM_1_2, kinds)));
        assertEquals(List.of("prune:0.7", "wanda:0.7", "prune:1.0"),
                later.trials().stream().map(t -> t.compression().toString()).toList());
    }

    /**
     * Hand-computed: m(S) = 64, T = 0.5 in one iteration, a and b of 100 parameters each, both offered prune and
     * nm:1:2. a keeps 60 at nm:1:2 but falls fast under prune; b keeps up under prune but not at nm:1:2. For f in
     * (50, 60] a's best is nm:1:2 (a step to 0.5 while f ≤ 60) and b's is prune, 0.25 + (62 − f)/24, so the overall
     * sparsity (a_a + a_b)/2 reaches 0.5 at f = 56: a goes to nm:1:2, b to prune:0.5 (0.5001 on the grid at most).
     */
    @Test
    void theCommitTakesPerComponentTheKindThatReachesFurthestAndNmOnlyAtItsOwnSparsity() {
        List<Kind> kinds = List.of(TargetAllocation.PRUNE, NM_1_2);
        Plan plan = new TargetAllocation(0.5, 1).plan(1, List.of(new Component("a", 100, 0, TargetAllocation.PRUNE,
                kinds), new Component("b", 100, 0, TargetAllocation.PRUNE, kinds)));
        Map<String, Double> a = Map.of("prune:0.25", 40.0, "prune:0.75", 10.0, "nm:1:2", 60.0, "prune:1.0", 0.0);
        Map<String, Double> b = Map.of("prune:0.25", 62.0, "prune:0.75", 50.0, "nm:1:2", 20.0, "prune:1.0", 0.0);
        Map<Trial, Double> measured = new HashMap<>();
        for (Trial t : plan.trials()) {
            measured.put(t, (t.component().equals("a") ? a : b).get(t.compression().toString()));
        }
        assertEquals(8, measured.size());
        Commit commit = plan.commit(64, measured);
        assertTrue(commit.threshold() <= 56 && commit.threshold() > 56 - 1e-3, "f = " + commit.threshold());
        assertEquals(4, commit.curves().size(), "a curve per component and kind");
        assertEquals(List.of(new AllocationCurve.Point(0, 64), new AllocationCurve.Point(0.5, 60),
                new AllocationCurve.Point(1, 0)), commit.curves().get(1).points());
        Component ca = commit.components().get(0);
        Component cb = commit.components().get(1);
        assertEquals("nm:1:2", ca.compression().toString());
        assertEquals(0.5, ca.sparsity());
        assertEquals(TargetAllocation.PRUNE, cb.kind());
        assertTrue(cb.sparsity() >= 0.5 && cb.sparsity() <= 0.5001, "b at " + cb.sparsity());
        assertTrue(commit.overallSparsity() >= 0.5);
        // between its points an N:M curve does not move: just above 60 a takes nothing of nm:1:2
        assertEquals(0, commit.curves().get(1).amountAt(60.5));
        assertEquals(0.5, commit.curves().get(1).amountAt(60));
    }

    @Test
    void aComponentThatQuantizesOrAnNmAtAnotherSparsityIsRefused() {
        Kind int8 = new Kind.Fixed(new CompressionSpec.Int8Rowwise());
        assertMessage("component a: a target allocation allocates sparsity, and int8_rowwise zeroes nothing",
                () -> new Component("a", 100, 0, TargetAllocation.PRUNE, List.of(int8)));
        assertMessage("component a is nm:1:2, whose sparsity is 0.5, not 0.3",
                () -> new Component("a", 100, 0.3, NM_1_2, List.of(NM_1_2)));
    }
}
