package io.dtm.schemas;

import java.util.Arrays;
import java.util.Comparator;
import java.util.function.ToDoubleFunction;

/**
 * The aggregates of per-prompt FDT/SDT over a prompt set (dtm-spec, "Aggregates"): FDTM = mean FDT, its median,
 * 10th percentile and the share of prompts with FDT = N; SDTM = mean SDT. Percentiles interpolate linearly between
 * order statistics (numpy's default), so they match a Python cross-check.
 */
public record DivergenceSummary(int prompts, int tokens, double fdtm, double fdtMedian, double fdtP10,
                                double shareAtN, double sdtm) {

    /** Ranking order (dtm-spec, greedy schedule): higher FDTM first; ties: higher SDTM loses. Name order is the caller's. */
    public static final Comparator<DivergenceSummary> BEST_FIRST =
            bestFirst(DivergenceSummary::fdtm, DivergenceSummary::sdtm);

    /** {@link #BEST_FIRST} for anything that carries an FDTM and an SDTM, so the tie rule is written once. */
    public static <T> Comparator<T> bestFirst(ToDoubleFunction<T> fdtm, ToDoubleFunction<T> sdtm) {
        return Comparator.comparingDouble(fdtm).reversed().thenComparingDouble(sdtm);
    }

    public static DivergenceSummary of(int[] fdt, double[] sdt, int tokens) {
        if (fdt.length != sdt.length) {
            throw new IllegalArgumentException("fdt has " + fdt.length + " prompts but sdt has " + sdt.length);
        }
        if (fdt.length == 0) {
            throw new IllegalArgumentException("no prompts to summarise");
        }
        double[] sorted = Arrays.stream(fdt).asDoubleStream().sorted().toArray();
        long atN = Arrays.stream(fdt).filter(f -> f == tokens).count();
        return new DivergenceSummary(fdt.length, tokens, Arrays.stream(fdt).average().orElseThrow(),
                percentile(sorted, 0.5), percentile(sorted, 0.1), (double) atN / fdt.length,
                Arrays.stream(sdt).average().orElseThrow());
    }

    /** Linear interpolation between closest ranks of an ascending array ({@code numpy.percentile} default). */
    static double percentile(double[] ascending, double q) {
        double rank = q * (ascending.length - 1);
        int lo = (int) Math.floor(rank);
        int hi = Math.min(lo + 1, ascending.length - 1);
        return ascending[lo] + (rank - lo) * (ascending[hi] - ascending[lo]);
    }
}
