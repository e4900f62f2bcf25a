package io.dtm.engine;

import io.dtm.schemas.CompressionSpec;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * The single-round sweep (every linear component at one compression) scored three ways in one run, so the speed-up is
 * a ratio measured on the same machine at the same time: (a) token-by-token decoding with a KV cache, (b) a full
 * teacher-forced forward per trial, (c) the engine's fast path. All three must give identical FDT/SDT.
 *
 * <p>Shared set-up (tokenizing, the base model's greedy continuations and its teacher-forced reference pass, which also
 * fills the cache) is timed separately: every method needs the reference tokens.
 */
public final class Bench {

    public record Result(int trials, double setupSeconds, double naiveSeconds, double fullSeconds, double fastSeconds,
                         int naiveDisagreements, int fullDisagreements) {

        public double speedupVsFull() {
            return fullSeconds / fastSeconds;
        }

        public double speedupVsNaive() {
            return naiveSeconds / fastSeconds;
        }

        public String line() {
            return String.format(java.util.Locale.ROOT,
                    "bench: naive=%.2f full=%.2f fast=%.2f speedup_vs_full=%.2f speedup_vs_naive=%.2f",
                    naiveSeconds, fullSeconds, fastSeconds, speedupVsFull(), speedupVsNaive());
        }
    }

    private Bench() {}

    /** One trial per component of the model at {@code compression}. */
    public static List<Trial> singleRound(DivergenceEngine engine, CompressionSpec compression) {
        List<Trial> trials = new ArrayList<>();
        for (String c : engine.config().componentNames()) {
            trials.add(Trial.of(c, compression));
        }
        return trials;
    }

    public static Result run(DivergenceEngine engine, List<String> prompts, int tokens, List<Trial> trials, PrintStream log) {
        long t0 = System.nanoTime();
        try (PromptSet set = engine.prepare(prompts, tokens, DivergenceEngine.Progress.NONE)) {
            double setup = seconds(t0);
            log.printf("set-up: %d prompts x %d tokens, base continuations + reference pass + cache (%.1f MB) in %.2f s%n",
                    set.size(), tokens, set.cacheBytes() / 1e6, setup);
            // one untimed trial per method first, so no method pays for cold kernels and JIT
            Trial warmUp = trials.get(0);
            engine.score(set, warmUp);
            engine.scoreFull(set, warmUp);
            engine.scoreByDecoding(set, warmUp);
            // Interleaved trial by trial, so a change in machine load weighs on all three methods alike; and the order
            // rotates, so each method follows each other one equally often (a method run right after another inherits
            // its allocator and cache state).
            double[] seconds = new double[3];
            int naiveDisagreements = 0;
            int fullDisagreements = 0;
            for (int i = 0; i < trials.size(); i++) {
                Trial t = trials.get(i);
                TrialScore[] scores = new TrialScore[3];
                for (int k = 0; k < 3; k++) {
                    int method = (i + k) % 3;
                    long s0 = System.nanoTime();
                    scores[method] = switch (method) {
                        case 0 -> engine.score(set, t);
                        case 1 -> engine.scoreFull(set, t);
                        default -> engine.scoreByDecoding(set, t);
                    };
                    seconds[method] += (System.nanoTime() - s0) / 1e9;
                }
                TrialScore fast = scores[0];
                TrialScore full = scores[1];
                TrialScore naive = scores[2];
                fullDisagreements += disagreements(fast, full);
                naiveDisagreements += disagreements(fast, naive);
                if ((i + 1) % 8 == 0 || i + 1 == trials.size()) {
                    log.printf("  %d/%d trials: naive %.1f s, full %.1f s, fast %.1f s%n",
                            i + 1, trials.size(), seconds[2], seconds[1], seconds[0]);
                }
            }
            log.printf("fast path: the LM head was proven unnecessary for %.1f%% of scored rows%n",
                    100 * engine.headRowsProven());
            return new Result(trials.size(), setup, seconds[2], seconds[1], seconds[0], naiveDisagreements,
                    fullDisagreements);
        }
    }

    /** Prompts whose FDT or SDT differ between two scorings of the same trial. */
    static int disagreements(TrialScore a, TrialScore b) {
        int n = 0;
        for (int p = 0; p < a.fdt().length; p++) {
            if (a.fdt()[p] != b.fdt()[p] || a.sdt()[p] != b.sdt()[p]) {
                n++;
            }
        }
        return n;
    }

    private static double seconds(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }
}
