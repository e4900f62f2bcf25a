package io.dtm.local;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.planner.Kind;
import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.avro.SweepRequest;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.IntFunction;

/** What the demo shows of a sweep: a line per change while it runs, then the rankings and schedule, and its file. */
public final class DemoReport {
    private DemoReport() {}

    private static final int SHOWN = 10;
    private static final int SHOWN_LIVE = 3;

    /** Prints a progress line whenever what the aggregator answers changes. */
    public static LocalPipeline.Progress progress(PrintStream out) {
        return progress(out, round -> "round " + round);
    }

    /** {@link #progress(PrintStream)}, naming round r as {@code roundName} says (a target allocation's iterations). */
    public static LocalPipeline.Progress progress(PrintStream out, IntFunction<String> roundName) {
        return new LocalPipeline.Progress() {
            private String last = "";

            @Override
            public void update(Optional<RankingView> ranking, Optional<ScheduleView> schedule) {
                StringBuilder line = new StringBuilder();
                ranking.ifPresent(r -> {
                    line.append(String.format(Locale.ROOT, "%s: %d/%d trials", roundName.apply(r.round()),
                            r.trialsDone(), r.trialsTotal()));
                    r.entries().stream().filter(RankingView.Entry::complete).limit(SHOWN_LIVE)
                            .forEach(e -> line.append(String.format(Locale.ROOT, " | %s %s FDTM %.1f",
                                    shortName(e.component()), e.compression(), e.fdtm())));
                });
                schedule.ifPresent(s -> line.append(String.format(Locale.ROOT, " | %d step(s) decided",
                        s.steps().size())));
                if (line.length() > 0 && !line.toString().equals(last)) {
                    out.println(line);
                    last = line.toString();
                }
            }
        };
    }

    private static String shortName(String component) {
        return component.replace("model.layers.", "L").replace("self_attn.", "").replace("mlp.", "");
    }

    /**
     * Each round's best candidates (with the sparsity and bits per weight each leaves its component), which kind keeps
     * FDTM highest per component when the sweep offers several, then the schedule step by step and why it stopped.
     */
    public static void print(PrintStream out, SweepRequest request, Map<Integer, RankingView> rankings,
                             ScheduleView schedule) {
        out.println();
        for (RankingView r : rankings.values()) {
            out.printf("round %d ranking (best first):%n", r.round());
            r.entries().stream().limit(SHOWN).forEach(e -> out.printf(Locale.ROOT,
                    "  %-36s %-20s sparsity %5.1f%% %5.2f bits  FDTM %5.1f  SDTM %.4f  at N %3.0f%%%n",
                    e.component(), e.compression(), 100 * e.sparsity(), e.bitsPerWeight(), e.fdtm(), e.sdtm(),
                    100 * e.shareAtN()));
            if (r.entries().size() > SHOWN) {
                out.printf("  ... %d more%n", r.entries().size() - SHOWN);
            }
        }
        KindComparison comparison = comparison(request, rankings);
        if (comparison != null) {
            printComparison(out, comparison);
        }
        out.println("schedule:");
        for (ScheduleView.Step s : schedule.steps()) {
            out.printf(Locale.ROOT, "  round %d: commit %s -> schedule FDTM %.1f SDTM %.4f, overall sparsity %.2f%%,"
                            + " %.2f bits/weight%n",
                    s.round(), s.committed().stream().map(e -> e.component() + " -> " + e.compression()).toList(),
                    s.fdtm(), s.sdtm(), 100 * s.overallSparsity(), s.bitsPerWeight());
        }
        schedule.schedule().forEach(e -> out.printf("  %s -> %s%n", e.component(), e.compression()));
        if (!schedule.stopReason().isEmpty()) {
            out.println("  stopped: " + schedule.stopReason()
                    + (schedule.failure().isEmpty() ? "" : " (" + schedule.failure() + ")"));
        }
    }

    /** Round 0's comparison of kinds, or null for a sweep of one kind (or before round 0 is ranked). */
    private static KindComparison comparison(SweepRequest request, Map<Integer, RankingView> rankings) {
        return Kind.offered(request).size() > 1 && rankings.containsKey(0)
                ? KindComparison.of(request, rankings.get(0)) : null;
    }

    /** Round 0's candidates side by side per component, one table per sparsity that two kinds or more reached. */
    private static void printComparison(PrintStream out, KindComparison comparison) {
        out.println("which kind keeps FDTM highest, per component (round 0: each candidate alone on the base model):");
        for (KindComparison.Level level : comparison.levels()) {
            out.printf(Locale.ROOT, "  at %.1f%% sparsity:%n", 100 * level.sparsity());
            StringBuilder header = new StringBuilder(String.format(Locale.ROOT, "    %-36s", "component"));
            level.columns().forEach(c -> header.append(String.format(Locale.ROOT, " %20s", c.compression())));
            out.println(header.append("  best"));
            StringBuilder bits = new StringBuilder(String.format(Locale.ROOT, "    %-36s", "bits/weight"));
            level.columns().forEach(c -> bits.append(String.format(Locale.ROOT, " %20.3f", c.bitsPerWeight())));
            out.println(bits);
            for (KindComparison.Row row : level.rows()) {
                StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "    %-36s", row.component()));
                level.columns().forEach(c -> line.append(row.fdtm().containsKey(c.compression())
                        ? String.format(Locale.ROOT, " %20.2f", row.fdtm().get(c.compression()))
                        : String.format(Locale.ROOT, " %20s", "-")));
                out.println(line.append("  ").append(row.best()));
            }
            out.println("    best for " + level.wins().entrySet().stream()
                    .map(e -> e.getKey() + ": " + e.getValue()).toList() + " of " + level.rows().size() + " components");
        }
        if (comparison.levels().isEmpty()) {
            out.println("  no two kinds were measured at the same sparsity: a --prune-step equal to an N:M kind's N/M"
                    + " (0.5 for nm:2:4) compares prune and wanda with it");
        } else if (!comparison.unmatched().isEmpty()) {
            out.println("  not compared (no other kind at their sparsity): " + comparison.unmatched());
        }
    }

    /** Writes the demo's file (README, "Quick start"): the rankings of every round and the schedule. */
    public static void writeJson(Path file, SweepRequest request, Map<Integer, RankingView> rankings,
                                 ScheduleView schedule) throws IOException {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                .writeValue(file.toFile(), DemoFile.of(request, rankings, schedule));
    }

    /** The file's layout, kept as the README documents it; {@code comparison} is round 0's, null for one kind. */
    private record DemoFile(String sweepId, String model, int tokens, int prompts, List<String> kinds,
                            @JsonProperty("not_planned") List<String> notPlanned, List<Round> rounds,
                            KindComparison comparison, Schedule schedule) {

        static DemoFile of(SweepRequest request, Map<Integer, RankingView> rankings, ScheduleView schedule) {
            List<Round> rounds = rankings.values().stream()
                    .map(r -> new Round(r.round(), r.entries().stream().map(Candidate::of).toList())).toList();
            return new DemoFile(request.getSweepId(), request.getModel(), request.getTokens(),
                    request.getPrompts().size(), Kind.offered(request).stream().map(Kind::text).toList(),
                    TrialPlanner.notPlanned(request), rounds, DemoReport.comparison(request, rankings),
                    Schedule.of(request, schedule));
        }
    }

    private record Round(int round, List<Candidate> ranking) {}

    private record Candidate(String component, String compression, double sparsity,
                             @JsonProperty("bits_per_weight") double bitsPerWeight, double fdtm, double sdtm,
                             @JsonProperty("fdt_median") double fdtMedian, @JsonProperty("fdt_p10") double fdtP10,
                             @JsonProperty("share_at_n") double shareAtN) {

        static Candidate of(RankingView.Entry e) {
            return new Candidate(e.component(), e.compression(), e.sparsity(), e.bitsPerWeight(), e.fdtm(), e.sdtm(),
                    e.fdtMedian(), e.fdtP10(), e.shareAtN());
        }
    }

    /**
     * The cumulative schedule by component, its steps, and the last step's sparsity, bits per weight and FDTM (the
     * base model's: no zeros, the source's bits, N).
     */
    private record Schedule(Map<String, String> components, List<ScheduleView.Step> steps,
                            @JsonProperty("overall_sparsity") double overallSparsity,
                            @JsonProperty("bits_per_weight") double bitsPerWeight, double fdtm,
                            @JsonProperty("stop_reason") String stopReason) {

        static Schedule of(SweepRequest request, ScheduleView schedule) {
            Map<String, String> components = new LinkedHashMap<>();
            schedule.schedule().forEach(e -> components.put(e.component(), e.compression()));
            List<ScheduleView.Step> steps = schedule.steps();
            ScheduleView.Step last = steps.isEmpty() ? null : steps.get(steps.size() - 1);
            return new Schedule(components, steps, last == null ? 0.0 : last.overallSparsity(),
                    last == null ? request.getSourceBits() : last.bitsPerWeight(),
                    last == null ? request.getTokens() : last.fdtm(), schedule.stopReason());
        }
    }
}
