package io.dtm.engine;

import ai.djl.pytorch.jni.JniUtils;
import io.dtm.schemas.CompressionSpec;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * A single-round sweep (linear components at one compression) scored several ways in one run, so speed-ups are ratios
 * measured on the same machine at the same time: (a) token-by-token decoding with a KV cache, (b) a full teacher-forced
 * forward per trial, (c) the engine's fast path. All must give identical FDT/SDT.
 *
 * <p>Shared set-up (tokenizing, the base model's greedy continuations and its teacher-forced reference pass, which also
 * fills the cache) is timed separately: every method needs the reference tokens.
 */
public final class Bench {

    /** A scoring method, as {@code --methods} names it. */
    public enum Method {
        FAST, FULL, NAIVE;

        /** {@code fast,full,naive} (any subset, any order) → the methods, in this enum's order. */
        public static Set<Method> parse(String text) {
            Set<Method> out = java.util.EnumSet.noneOf(Method.class);
            for (String part : text.split(",")) {
                String name = part.trim().toUpperCase(Locale.ROOT);
                try {
                    out.add(valueOf(name));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("unknown method '" + part.trim() + "' (methods: fast, full, naive)");
                }
            }
            return out;
        }

        String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * Seconds per method over all trials and, for every method other than fast, the trial-prompts whose FDT or SDT
     * differ from fast's (-1 when fast did not run).
     */
    public record Result(int trials, double setupSeconds, Map<Method, Double> seconds, Map<Method, Integer> disagreements) {

        public double msPerTrial(Method method) {
            return 1000 * seconds.get(method) / trials;
        }

        /**
         * {@code bench: naive=… full=… fast=… speedup_vs_full=… speedup_vs_naive=…} for the methods that ran (seconds;
         * a speed-up only where fast and the other ran).
         */
        public String line() {
            StringBuilder s = new StringBuilder("bench:");
            for (Method m : List.of(Method.NAIVE, Method.FULL, Method.FAST)) {
                if (seconds.containsKey(m)) {
                    s.append(String.format(Locale.ROOT, " %s=%.2f", m.label(), seconds.get(m)));
                }
            }
            if (seconds.containsKey(Method.FAST)) {
                for (Method m : List.of(Method.FULL, Method.NAIVE)) {
                    if (seconds.containsKey(m)) {
                        s.append(String.format(Locale.ROOT, " speedup_vs_%s=%.2f", m.label(),
                                seconds.get(m) / seconds.get(Method.FAST)));
                    }
                }
            }
            return s.toString();
        }
    }

    private Bench() {}

    /** One trial per linear component whose name matches {@code components}, at {@code compression}. */
    public static List<Trial> singleRound(DivergenceEngine engine, CompressionSpec compression, Pattern components) {
        List<Trial> trials = new ArrayList<>();
        for (String c : engine.config().componentNames()) {
            if (components.matcher(c).matches()) {
                trials.add(Trial.of(c, compression));
            }
        }
        if (trials.isEmpty()) {
            throw new IllegalArgumentException("no component matches '" + components + "' (components look like "
                    + engine.config().componentNames().get(0) + ")");
        }
        return trials;
    }

    /**
     * Times {@code methods} over {@code trials}, interleaved; then, if {@code profiled > 0}, profiles that many trials
     * spread over the list phase by phase ({@link DivergenceEngine#profile}) and prints the mean per phase.
     */
    public static Result run(DivergenceEngine engine, List<String> prompts, int tokens, List<Trial> trials,
                             Set<Method> methods, int profiled, Path trace, PrintStream log) {
        if (methods.isEmpty()) {
            throw new IllegalArgumentException("no method to bench");
        }
        List<Method> order = List.copyOf(methods);
        long t0 = System.nanoTime();
        try (PromptSet set = engine.prepare(prompts, tokens, DivergenceEngine.Progress.NONE)) {
            double setup = (System.nanoTime() - t0) / 1e9;
            log.printf("set-up: %d prompts x %d tokens, base continuations + reference pass + cache (%.1f MB) in %.2f s%n",
                    set.size(), tokens, set.cacheBytes() / 1e6, setup);
            // one untimed trial per method first, so no method pays for cold kernels and JIT
            for (Method m : order) {
                score(engine, set, trials.get(0), m);
            }
            // Interleaved trial by trial, so a change in machine load weighs on all methods alike; and the order
            // rotates, so each method follows each other one equally often (a method run right after another inherits
            // its allocator and cache state).
            Map<Method, Double> seconds = new EnumMap<>(Method.class);
            Map<Method, Integer> disagreements = new EnumMap<>(Method.class);
            for (Method m : order) {
                seconds.put(m, 0.0);
                if (m != Method.FAST) {
                    disagreements.put(m, methods.contains(Method.FAST) ? 0 : -1);
                }
            }
            for (int i = 0; i < trials.size(); i++) {
                Trial t = trials.get(i);
                Map<Method, TrialScore> scores = new EnumMap<>(Method.class);
                for (int k = 0; k < order.size(); k++) {
                    Method m = order.get((i + k) % order.size());
                    long s0 = System.nanoTime();
                    scores.put(m, score(engine, set, t, m));
                    seconds.merge(m, (System.nanoTime() - s0) / 1e9, Double::sum);
                }
                if (scores.containsKey(Method.FAST)) {
                    for (Method m : disagreements.keySet()) {
                        disagreements.merge(m, disagreements(scores.get(Method.FAST), scores.get(m)), Integer::sum);
                    }
                }
                if ((i + 1) % 8 == 0 || i + 1 == trials.size()) {
                    int done = i + 1;
                    log.printf("  %d/%d trials: %s%n", done, trials.size(), order.stream()
                            .map(m -> String.format(Locale.ROOT, "%s %.1f s", m.label(), seconds.get(m)))
                            .collect(Collectors.joining(", ")));
                }
            }
            if (methods.contains(Method.FAST) && engine.headRowsProven() > 0) {
                log.printf("fast path: the LM head was proven unnecessary for %.1f%% of scored rows%n",
                        100 * engine.headRowsProven());
            }
            if (profiled > 0) {
                profile(engine, set, trials, profiled, log);
            }
            if (trace != null) {
                trace(engine, set, trials, profiled > 0 ? profiled : TRACED, trace, log);
            }
            return new Result(trials.size(), setup, seconds, disagreements);
        }
    }

    /** Fast trials a trace records unless {@code --profile} names a count. */
    static final int TRACED = 8;

    /**
     * Records PyTorch's own profiler over {@code count} fast trials spread over the list, with each op's device time
     * on a GPU, and writes its Chrome trace to {@code file}: which kernels a trial's device time goes to.
     */
    private static void trace(DivergenceEngine engine, PromptSet set, List<Trial> trials, int count, Path file,
                              PrintStream log) {
        int k = Math.min(count, trials.size());
        JniUtils.startProfile(engine.device().isGpu(), true, false);
        try {
            for (int i = 0; i < k; i++) {
                engine.score(set, trials.get(i * trials.size() / k));
            }
        } finally {
            JniUtils.stopProfile(file.toString());
        }
        log.printf("trace of %d fast trials written to %s%n", k, file);
    }

    private static void profile(DivergenceEngine engine, PromptSet set, List<Trial> trials, int count, PrintStream log) {
        int k = Math.min(count, trials.size());
        Map<String, Double> sum = new java.util.LinkedHashMap<>();
        Map<String, Double> host = new java.util.LinkedHashMap<>();
        for (int i = 0; i < k; i++) {
            DivergenceEngine.Profile p = engine.profile(set, trials.get(i * trials.size() / k));
            p.millis().forEach((phase, ms) -> sum.merge(phase, ms, Double::sum));
            p.hostMillis().forEach((phase, ms) -> host.merge(phase, ms, Double::sum));
        }
        double total = sum.values().stream().mapToDouble(Double::doubleValue).sum() / k;
        log.printf("profile of %d trials (mean ms per trial, each phase waited for; host: until its ops were queued):"
                + " %s; total %.1f%n", k, sum.entrySet().stream()
                .map(e -> String.format(Locale.ROOT, "%s %.1f (host %.1f)", e.getKey(), e.getValue() / k,
                        host.get(e.getKey()) / k))
                .collect(Collectors.joining(", ")), total);
    }

    private static TrialScore score(DivergenceEngine engine, PromptSet set, Trial t, Method m) {
        return switch (m) {
            case FAST -> engine.score(set, t);
            case FULL -> engine.scoreFull(set, t);
            case NAIVE -> engine.scoreByDecoding(set, t);
        };
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
}
