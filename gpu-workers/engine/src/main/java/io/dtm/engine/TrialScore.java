package io.dtm.engine;

import io.dtm.schemas.DivergenceSummary;
import java.util.Arrays;

/** Per-prompt FDT and SDT of one trial over a prompt set (dtm-spec, "Teacher-forced divergence"). */
public record TrialScore(int tokens, int[] fdt, double[] sdt) {

    public TrialScore {
        if (fdt.length != sdt.length) {
            throw new IllegalArgumentException("fdt and sdt cover different prompt counts");
        }
    }

    /** FDT = first i with ŷ_i ≠ r_i (N if none); SDT = |{i : ŷ_i ≠ r_i}| / N; rows are N per prompt, prompt-major. */
    static TrialScore compare(int[] predicted, int[] reference, int tokens) {
        int prompts = reference.length / tokens;
        int[] fdt = new int[prompts];
        double[] sdt = new double[prompts];
        for (int p = 0; p < prompts; p++) {
            int first = tokens;
            int divergent = 0;
            for (int i = 0; i < tokens; i++) {
                if (predicted[p * tokens + i] != reference[p * tokens + i]) {
                    divergent++;
                    first = Math.min(first, i);
                }
            }
            fdt[p] = first;
            sdt[p] = (double) divergent / tokens;
        }
        return new TrialScore(tokens, fdt, sdt);
    }

    public DivergenceSummary summary() {
        return DivergenceSummary.of(fdt, sdt, tokens);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TrialScore s && s.tokens == tokens && Arrays.equals(s.fdt, fdt) && Arrays.equals(s.sdt, sdt);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(fdt) + Arrays.hashCode(sdt);
    }

    @Override
    public String toString() {
        return "TrialScore{fdt=" + Arrays.toString(fdt) + ", sdt=" + Arrays.toString(sdt) + "}";
    }
}
