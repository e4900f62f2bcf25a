package io.dtm.planner;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.NullAndEmptySource;
import org.junit.jupiter.params.provider.ValueSource;

import static io.dtm.planner.Messages.assertMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AllocationMetricTest {

    @ParameterizedTest
    @CsvSource({"fdtm, fdtm", " FDTM , fdtm", "fdt-q:0.25, fdt-q:0.25", "fdt-q:0.250, fdt-q:0.25", "FDT-Q:1, fdt-q:1",
            "fdt-q:1.0, fdt-q:1", "fdt-q:0, fdt-q:0", "fdt-q: 0.1, fdt-q:0.1"})
    void parsesEveryFormToItsCanonicalText(String text, String canonical) {
        AllocationMetric metric = AllocationMetric.parse(text);
        assertEquals(canonical, metric.toString());
        assertEquals(metric, AllocationMetric.parse(metric.toString()));
    }

    @Test
    void fdtmIsTheDefault() {
        assertSame(AllocationMetric.FDTM, AllocationMetric.parse("fdtm"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"fdt", "fdtm:1", "fdt-q", "fdt-q:", "fdt-q:x", "fdt-q:-0.1", "fdt-q:1.5", "fdt-q:NaN",
            "quantile:0.5", "fdt-q:0.5:1"})
    void rejectsInvalidMetricsNamingTheText(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AllocationMetric.parse(text));
        assertTrue(e.getMessage().contains("'" + text + "'"), e.getMessage());
    }

    @ParameterizedTest
    @NullAndEmptySource
    @ValueSource(strings = {"  "})
    void rejectsAMissingMetric(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AllocationMetric.parse(text));
        assertTrue(e.getMessage().contains("missing"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(doubles = {-0.01, 1.01, Double.NaN, Double.POSITIVE_INFINITY})
    void quantileOutsideZeroToOneIsRejectedByTheConstructor(double q) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new AllocationMetric.FdtQuantile(q));
        assertTrue(e.getMessage().contains("quantile must be within [0, 1], got " + q), e.getMessage());
    }

    @Test
    void fdtmIsTheMeanFdt() {
        assertEquals(4.75, AllocationMetric.FDTM.of(new int[] {0, 3, 8, 8}, 8));
        assertEquals(5.0, AllocationMetric.FDTM.of(new int[] {5}, 8));
    }

    /** Expected values from {@code np.quantile([7, 1, 4, 10, 2], q, method="linear")}. */
    @ParameterizedTest
    @CsvSource({"0, 1", "0.1, 1.4", "0.25, 2", "0.3, 2.4", "0.5, 4", "0.7, 6.4", "0.9, 8.8", "1, 10"})
    void quantileInterpolatesBetweenOrderStatisticsLikeNumpy(double q, double expected) {
        assertEquals(expected, new AllocationMetric.FdtQuantile(q).of(new int[] {7, 1, 4, 10, 2}, 16), 1e-12);
    }

    @Test
    void quantileHandValuesOnOtherCounts() {
        assertEquals(2.5, AllocationMetric.parse("fdt-q:0.5").of(new int[] {4, 1, 3, 2}, 4), 1e-12);
        // sorted 0 3 5 12 64 64: h = 1.25 → 3 + 0.25·2; h = 0.5 → 0 + 0.5·3 (numpy: 3.5, 1.5)
        assertEquals(3.5, AllocationMetric.parse("fdt-q:0.25").of(new int[] {3, 0, 64, 64, 12, 5}, 64), 1e-12);
        assertEquals(1.5, AllocationMetric.parse("fdt-q:0.1").of(new int[] {3, 0, 64, 64, 12, 5}, 64), 1e-12);
        assertEquals(9.0, AllocationMetric.parse("fdt-q:0.37").of(new int[] {9}, 64), 1e-12);
    }

    @Test
    void quantileLeavesTheCallersArrayAlone() {
        int[] fdt = {7, 1, 4};
        new AllocationMetric.FdtQuantile(0.5).of(fdt, 8);
        assertArrayEquals(new int[] {7, 1, 4}, fdt);
    }

    @Test
    void rejectsResultsThatCannotBeMeasured() {
        for (AllocationMetric metric : new AllocationMetric[] {AllocationMetric.FDTM, new AllocationMetric.FdtQuantile(0.5)}) {
            assertMessage("no prompts", () -> metric.of(new int[0], 8));
            assertMessage("no prompts", () -> metric.of(null, 8));
            assertMessage("FDT 9 of prompt 2 is outside 0..8", () -> metric.of(new int[] {1, 2, 9}, 8));
            assertMessage("FDT -1 of prompt 0 is outside 0..8", () -> metric.of(new int[] {-1}, 8));
            assertMessage("tokens must be >= 1, got 0", () -> metric.of(new int[] {0}, 0));
        }
    }
}
