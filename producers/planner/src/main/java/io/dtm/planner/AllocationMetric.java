package io.dtm.planner;

import java.math.BigDecimal;
import java.util.Arrays;
import java.util.Locale;

/**
 * The metric {@code m} that guides a target allocation (dtm-spec, "Target allocation"), computed from one schedule's
 * per-prompt FDTs: {@code fdtm} (the mean FDT, the default) or {@code fdt-q:Q} (the Q-quantile of FDT over prompts,
 * {@code 0 ≤ Q ≤ 1}).
 */
public sealed interface AllocationMetric permits AllocationMetric.Fdtm, AllocationMetric.FdtQuantile {

    /** The default metric. */
    AllocationMetric FDTM = new Fdtm();

    /** The metric of one schedule; higher is better, in tokens. */
    double of(int[] fdt, int tokens);

    /** Parses {@code fdtm} or {@code fdt-q:Q}; anything else is rejected with the offending text. */
    static AllocationMetric parse(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("allocation metric is missing (expected fdtm or fdt-q:Q)");
        }
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.equals("fdtm")) {
            return FDTM;
        }
        if (!t.startsWith("fdt-q:")) {
            throw new IllegalArgumentException("unknown allocation metric '" + text + "' (expected fdtm or fdt-q:Q)");
        }
        String q = t.substring("fdt-q:".length()).trim();
        try {
            return new FdtQuantile(Double.parseDouble(q));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("invalid quantile '" + q + "' in allocation metric '" + text + "'");
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("invalid allocation metric '" + text + "': " + e.getMessage());
        }
    }

    /** FDTM: the mean FDT over prompts. */
    record Fdtm() implements AllocationMetric {
        @Override
        public double of(int[] fdt, int tokens) {
            return Arrays.stream(checked(fdt, tokens)).average().orElseThrow();
        }

        @Override
        public String toString() {
            return "fdtm";
        }
    }

    /**
     * The {@code quantile}-quantile of FDT over prompts, interpolating linearly between order statistics exactly as
     * numpy's default {@code np.quantile(fdt, q, method="linear")}: with {@code x} the FDTs in ascending order and
     * {@code h = (n − 1)·q}, it is {@code x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])} ({@code x[n−1]} when {@code q = 1}),
     * so a Python cross-check agrees.
     */
    record FdtQuantile(double quantile) implements AllocationMetric {
        public FdtQuantile {
            if (!(quantile >= 0 && quantile <= 1)) {
                throw new IllegalArgumentException("quantile must be within [0, 1], got " + quantile);
            }
        }

        @Override
        public double of(int[] fdt, int tokens) {
            int[] x = checked(fdt, tokens).clone();
            Arrays.sort(x);
            double h = (x.length - 1) * quantile;
            int lo = (int) Math.floor(h);
            int hi = Math.min(lo + 1, x.length - 1);
            return x[lo] + (h - lo) * (x[hi] - x[lo]);
        }

        /** Canonical text, accepted by {@link #parse}. */
        @Override
        public String toString() {
            return "fdt-q:" + BigDecimal.valueOf(quantile).stripTrailingZeros().toPlainString();
        }
    }

    /** A metric of an empty or corrupt result would steer the allocation silently, so both are errors. */
    private static int[] checked(int[] fdt, int tokens) {
        if (tokens < 1) {
            throw new IllegalArgumentException("tokens must be >= 1, got " + tokens);
        }
        if (fdt == null || fdt.length == 0) {
            throw new IllegalArgumentException("no prompts to compute the allocation metric over");
        }
        for (int i = 0; i < fdt.length; i++) {
            if (fdt[i] < 0 || fdt[i] > tokens) {
                throw new IllegalArgumentException("FDT " + fdt[i] + " of prompt " + i + " is outside 0.." + tokens);
            }
        }
        return fdt;
    }
}
