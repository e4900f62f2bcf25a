package io.dtm.planner;

import io.dtm.planner.AllocationCurve.Point;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static io.dtm.planner.Messages.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AllocationCurveTest {

    /** m(S) = 10; measured 0.1 → 9, 0.3 → 9.5 (clipped to 9), 0.5 → 7, 1 → 8 (clipped to 7). */
    private static final AllocationCurve CURVE = AllocationCurve.of("a", 10,
            List.of(new Point(0.5, 7), new Point(0.1, 9), new Point(0.3, 9.5), new Point(1, 8)));

    @Test
    void pointsAreSortedStartAtMOfSAndRunningMinimumMakesThemNonIncreasing() {
        assertEquals(List.of(new Point(0, 10), new Point(0.1, 9), new Point(0.3, 9), new Point(0.5, 7), new Point(1, 7)),
                CURVE.points());
        assertEquals(1, CURVE.maxAmount());
        assertEquals(7, CURVE.minimum());
    }

    @Test
    void aMeasurementAboveMOfSIsClippedToIt() {
        AllocationCurve curve = AllocationCurve.of("a", 10, List.of(new Point(0.2, 12), new Point(1, 3)));
        assertEquals(List.of(new Point(0, 10), new Point(0.2, 10), new Point(1, 3)), curve.points());
    }

    @Test
    void runningMinimumOfRandomMeasurementsIsNonIncreasingAndTheMinimumSoFar() {
        Random random = new Random(7);
        for (int run = 0; run < 200; run++) {
            double scheduleMetric = random.nextInt(65);
            List<Point> measured = new ArrayList<>();
            for (double a : new double[] {0.05 + random.nextInt(40) / 100.0, 0.5 + random.nextInt(40) / 100.0, 1}) {
                measured.add(new Point(a, random.nextInt(70)));
            }
            AllocationCurve curve = AllocationCurve.of("c", scheduleMetric, measured);
            double expected = scheduleMetric;
            assertEquals(new Point(0, scheduleMetric), curve.points().get(0));
            for (int k = 1; k < curve.points().size(); k++) {
                expected = Math.min(expected, measured.get(k - 1).metric());
                assertEquals(measured.get(k - 1).amount(), curve.points().get(k).amount());
                assertEquals(expected, curve.points().get(k).metric());
                assertTrue(curve.points().get(k).metric() <= curve.points().get(k - 1).metric());
            }
            for (double a = 0; a <= 1; a += 0.01) {
                assertTrue(curve.value(Math.min(a + 0.01, 1)) <= curve.value(a) + 1e-12, "value rises after " + a);
            }
        }
    }

    @Test
    void valueInterpolatesLinearlyBetweenPoints() {
        assertEquals(10, CURVE.value(0));
        assertEquals(9.5, CURVE.value(0.05), 1e-12);
        assertEquals(9, CURVE.value(0.2), 1e-12);
        assertEquals(8, CURVE.value(0.4), 1e-12);
        assertEquals(7, CURVE.value(0.75), 1e-12);
        assertEquals(7, CURVE.value(1));
    }

    @Test
    void amountAboveMOfSIsZero() {
        assertEquals(0, CURVE.amountAt(10.001));
        assertEquals(0, CURVE.amountAt(1e9));
    }

    @Test
    void amountAtOrBelowTheMinimumIsTheLastPoint() {
        assertEquals(1, CURVE.amountAt(7));
        assertEquals(1, CURVE.amountAt(6.5));
        assertEquals(1, CURVE.amountAt(-1e9));
    }

    @Test
    void amountBetweenPointsIsWhereTheCurveFallsThroughF() {
        assertEquals(0, CURVE.amountAt(10));
        assertEquals(0.05, CURVE.amountAt(9.5), 1e-12);
        assertEquals(0.4, CURVE.amountAt(8), 1e-12);
        assertEquals(0.3 + 0.2 * 0.25, CURVE.amountAt(8.5), 1e-12);
        for (double f = 7.01; f <= 10; f += 0.01) {
            assertEquals(f, CURVE.value(CURVE.amountAt(f)), 1e-9, "curve at a_c(" + f + ")");
        }
    }

    @Test
    void aFlatStretchCountsUpToItsRightEnd() {
        assertEquals(0.3, CURVE.amountAt(9), 1e-12);
        assertEquals(0.1 - 0.1 * 1e-6, CURVE.amountAt(9 + 1e-6), 1e-12);
        AllocationCurve flat = AllocationCurve.of("dead", 10, List.of(new Point(0.2, 10), new Point(1, 10)));
        assertEquals(1, flat.amountAt(10));
        assertEquals(0, flat.amountAt(10 + 1e-9));
    }

    @Test
    void aCurveWithoutTrialsNeverMoves() {
        AllocationCurve pruned = AllocationCurve.of("full", 12, List.of());
        assertEquals(List.of(new Point(0, 12)), pruned.points());
        assertEquals(0, pruned.amountAt(13));
        assertEquals(0, pruned.amountAt(12));
        assertEquals(0, pruned.amountAt(-5));
        assertEquals(12, pruned.value(0));
    }

    @Test
    void rejectsMalformedCurves() {
        assertMessage("curve component is required", () -> new AllocationCurve(" ", List.of(new Point(0, 1))));
        assertMessage("must start at a = 0", () -> new AllocationCurve("a", List.of()));
        assertMessage("must start at a = 0", () -> new AllocationCurve("a", List.of(new Point(0.1, 1))));
        assertMessage("amounts must strictly increase", () -> new AllocationCurve("a",
                List.of(new Point(0, 5), new Point(0.5, 4), new Point(0.5, 3))));
        assertMessage("metrics must not increase", () -> new AllocationCurve("a",
                List.of(new Point(0, 5), new Point(0.5, 6))));
        assertMessage("amount must be within [0, 1], got 1.5", () -> new Point(1.5, 3));
        assertMessage("amount must be within [0, 1], got NaN", () -> new Point(Double.NaN, 3));
        assertMessage("metric must be finite, got NaN", () -> new Point(0.5, Double.NaN));
        assertMessage("metric must be finite, got Infinity", () -> AllocationCurve.of("a", Double.POSITIVE_INFINITY,
                List.of()));
        assertMessage("measured amount 0.0 is not > 0 or appears twice", () -> AllocationCurve.of("a", 5,
                List.of(new Point(0, 4))));
        assertMessage("measured amount 0.5 is not > 0 or appears twice", () -> AllocationCurve.of("a", 5,
                List.of(new Point(0.5, 4), new Point(0.5, 3))));
        assertMessage("amount 1.1 is outside the curve of a: [0, 1.0]", () -> CURVE.value(1.1));
        assertMessage("amount -0.1 is outside the curve of a", () -> CURVE.value(-0.1));
        assertMessage("threshold f must be a number", () -> CURVE.amountAt(Double.NaN));
    }
}
