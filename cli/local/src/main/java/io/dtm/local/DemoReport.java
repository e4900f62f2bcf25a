package io.dtm.local;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
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

    /** Each round's best candidates, then the schedule step by step and why the sweep stopped. */
    public static void print(PrintStream out, Map<Integer, RankingView> rankings, ScheduleView schedule) {
        out.println();
        for (RankingView r : rankings.values()) {
            out.printf("round %d ranking (best first):%n", r.round());
            r.entries().stream().limit(SHOWN).forEach(e -> out.printf(Locale.ROOT,
                    "  %-36s %-13s FDTM %5.1f  SDTM %.4f  at N %3.0f%%%n",
                    e.component(), e.compression(), e.fdtm(), e.sdtm(), 100 * e.shareAtN()));
            if (r.entries().size() > SHOWN) {
                out.printf("  ... %d more%n", r.entries().size() - SHOWN);
            }
        }
        out.println("schedule:");
        for (ScheduleView.Step s : schedule.steps()) {
            out.printf(Locale.ROOT, "  round %d: commit %s -> schedule FDTM %.1f SDTM %.4f, overall sparsity %.2f%%%n",
                    s.round(), s.committed().stream().map(e -> e.component() + " -> " + e.compression()).toList(),
                    s.fdtm(), s.sdtm(), 100 * s.overallSparsity());
        }
        schedule.schedule().forEach(e -> out.printf("  %s -> %s%n", e.component(), e.compression()));
        if (!schedule.stopReason().isEmpty()) {
            out.println("  stopped: " + schedule.stopReason()
                    + (schedule.failure().isEmpty() ? "" : " (" + schedule.failure() + ")"));
        }
    }

    /** Writes the demo's file (README, "Quick start"): the rankings of every round and the schedule. */
    public static void writeJson(Path file, SweepRequest request, Map<Integer, RankingView> rankings,
                                 ScheduleView schedule) throws IOException {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                .writeValue(file.toFile(), DemoFile.of(request, rankings, schedule));
    }

    /** The file's layout, kept as the README documents it. */
    private record DemoFile(String sweepId, String model, int tokens, int prompts, List<Round> rounds,
                            Schedule schedule) {

        static DemoFile of(SweepRequest request, Map<Integer, RankingView> rankings, ScheduleView schedule) {
            List<Round> rounds = rankings.values().stream()
                    .map(r -> new Round(r.round(), r.entries().stream().map(Candidate::of).toList())).toList();
            return new DemoFile(request.getSweepId(), request.getModel(), request.getTokens(),
                    request.getPrompts().size(), rounds, Schedule.of(request, schedule));
        }
    }

    private record Round(int round, List<Candidate> ranking) {}

    private record Candidate(String component, String compression, double fdtm, double sdtm,
                             @JsonProperty("fdt_median") double fdtMedian, @JsonProperty("fdt_p10") double fdtP10,
                             @JsonProperty("share_at_n") double shareAtN) {

        static Candidate of(RankingView.Entry e) {
            return new Candidate(e.component(), e.compression(), e.fdtm(), e.sdtm(), e.fdtMedian(), e.fdtP10(),
                    e.shareAtN());
        }
    }

    /** The cumulative schedule by component, its steps, and the last step's sparsity and FDTM (the base model's N). */
    private record Schedule(Map<String, String> components, List<ScheduleView.Step> steps,
                            @JsonProperty("overall_sparsity") double overallSparsity, double fdtm,
                            @JsonProperty("stop_reason") String stopReason) {

        static Schedule of(SweepRequest request, ScheduleView schedule) {
            Map<String, String> components = new LinkedHashMap<>();
            schedule.schedule().forEach(e -> components.put(e.component(), e.compression()));
            List<ScheduleView.Step> steps = schedule.steps();
            ScheduleView.Step last = steps.isEmpty() ? null : steps.get(steps.size() - 1);
            return new Schedule(components, steps, last == null ? 0.0 : last.overallSparsity(),
                    last == null ? request.getTokens() : last.fdtm(), schedule.stopReason());
        }
    }
}
