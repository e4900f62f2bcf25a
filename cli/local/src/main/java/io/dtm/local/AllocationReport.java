package io.dtm.local;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.dtm.aggregator.ScheduleView;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.SweepRequest;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the demo shows of a target allocation (the paper's question: where should the sparsity go, and how much better
 * is that than pruning uniformly?): a row per iteration and baseline with its sparsity, FDTM, SDTM and text metrics,
 * where the sparsity went by layer and by kind of matrix, and the file {@code --out} writes.
 */
public final class AllocationReport {
    private AllocationReport() {}

    private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.(?:[a-z_]+\\.)?([a-z_0-9]+)");
    private static final String ALLOCATED = "allocated";

    /** The table of iterations and baselines, then where the sparsity went, then how the sweep ended. */
    public static void print(PrintStream out, SweepRequest request, ScheduleView schedule) {
        out.println();
        out.printf(Locale.ROOT, "target allocation to %.2f%% overall in %d iterations by %s%s%n",
                100 * request.getTargetSparsity(), request.getAllocation().getIterations(),
                request.getAllocation().getMetric(), request.getAllocation().getText().isEmpty() ? ""
                        : ", text metrics on " + request.getAllocation().getText().size() + " documents");
        out.println("schedule       target  overall  threshold   FDTM    SDTM  perplexity        KL   top-1");
        for (ScheduleView.Step s : schedule.steps()) {
            if (s.allocation() != null) {
                out.println(row("iteration " + s.allocation().iteration(), s.allocation().target(),
                        s.overallSparsity(), String.format(Locale.ROOT, "%9.3f", s.allocation().threshold()), s.fdtm(),
                        s.sdtm(), s.text()));
            }
        }
        for (ScheduleView.Baseline b : schedule.baselines()) {
            out.println(row(b.name(), request.getTargetSparsity(), b.overallSparsity(), "        -", b.fdtm(), b.sdtm(),
                    b.text()));
        }
        Map<String, Map<String, Double>> schedules = schedules(request, schedule);
        out.printf("where the sparsity went (zeroed share of each group's parameters):%n");
        Map<String, Map<String, Map<String, Double>>> sparsity = sparsity(request, schedules);
        printShares(out, "layer", sparsity.get("by_layer"));
        printShares(out, "kind", sparsity.get("by_kind"));
        if (!request.getKinds().isEmpty()) {
            Map<String, Integer> methods = new LinkedHashMap<>();
            request.getKinds().forEach(k -> methods.put(k, 0));
            schedule.schedule().forEach(e -> methods.merge(method(e.compression()), 1, Integer::sum));
            out.println("  components by the kind of compression they were given: " + methods);
        }
        out.println("stopped: " + schedule.stopReason() + (schedule.failure().isEmpty() ? ""
                : " (" + schedule.failure() + ")"));
    }

    private static String row(String name, double target, double overall, String threshold, double fdtm, double sdtm,
                              ScheduleView.Text text) {
        String texts = text == null ? String.format("%11s %9s %7s", "-", "-", "-")
                : String.format(Locale.ROOT, "%11.3f %9.5f %6.2f%%", text.perplexity(), text.kl(),
                100 * text.top1Agreement());
        return String.format(Locale.ROOT, "%-12s %7.2f%% %7.2f%%  %s %6.2f  %.4f %s", name, 100 * target,
                100 * overall, threshold, fdtm, sdtm, texts);
    }

    private static void printShares(PrintStream out, String by, Map<String, Map<String, Double>> shares) {
        List<String> columns = List.copyOf(shares.values().iterator().next().keySet());
        StringBuilder header = new StringBuilder(String.format("  %-10s", by));
        columns.forEach(c -> header.append(String.format("%11s", c)));
        out.println(header);
        shares.forEach((group, values) -> {
            StringBuilder line = new StringBuilder(String.format("  %-10s", group));
            values.values().forEach(v -> line.append(String.format(Locale.ROOT, "%10.2f%%", 100 * v)));
            out.println(line);
        });
    }

    /** The allocated schedule, then the baselines', each as component → zeroed share (absent: 0). */
    private static Map<String, Map<String, Double>> schedules(SweepRequest request, ScheduleView schedule) {
        Map<String, Map<String, Double>> all = new LinkedHashMap<>();
        all.put(ALLOCATED, sparsities(schedule.schedule()));
        schedule.baselines().forEach(b -> all.put(b.name(), sparsities(b.schedule())));
        return all;
    }

    private static Map<String, Double> sparsities(List<ScheduleView.Entry> entries) {
        Map<String, Double> sparsity = new LinkedHashMap<>();
        entries.forEach(e -> sparsity.put(e.component(), CompressionSpec.parse(e.compression()).zeroShare()));
        return sparsity;
    }

    /** Where the sparsity went: by layer and by kind of matrix, each schedule's share of zeros. */
    private static Map<String, Map<String, Map<String, Double>>> sparsity(SweepRequest request,
                                                                          Map<String, Map<String, Double>> schedules) {
        Map<String, Map<String, Map<String, Double>>> by = new LinkedHashMap<>();
        by.put("by_layer", shares(request, schedules, c -> group(c, 1)));
        by.put("by_kind", shares(request, schedules, c -> group(c, 2)));
        return by;
    }

    /** Per group (in the order the sweep's components first show it), each schedule's parameter-weighted sparsity. */
    private static Map<String, Map<String, Double>> shares(SweepRequest request, Map<String, Map<String, Double>> schedules,
                                                           Function<String, String> groupOf) {
        Map<String, long[]> params = new LinkedHashMap<>();
        Map<String, Map<String, Double>> zeros = new LinkedHashMap<>();
        for (ComponentInfo c : request.getComponents()) {
            String group = groupOf.apply(c.getName());
            params.computeIfAbsent(group, g -> new long[1])[0] += c.getParams();
            Map<String, Double> z = zeros.computeIfAbsent(group, g -> new LinkedHashMap<>());
            schedules.forEach((name, sparsity) -> z.merge(name, c.getParams() * sparsity.getOrDefault(c.getName(), 0.0),
                    Double::sum));
        }
        Map<String, Map<String, Double>> shares = new LinkedHashMap<>();
        zeros.forEach((group, z) -> {
            Map<String, Double> share = new LinkedHashMap<>();
            z.forEach((name, zeroed) -> share.put(name, zeroed / params.get(group)[0]));
            shares.put(group, share);
        });
        return shares;
    }

    /** How {@code compression} compresses, as {@code --kinds} names it: prune, wanda or nm:N:M. */
    private static String method(String compression) {
        CompressionSpec.Step step = CompressionSpec.parse(compression).steps().get(0);
        return step instanceof CompressionSpec.NM ? step.text() : step.text().substring(0, step.text().indexOf(':'));
    }

    /** The layer (part 1) or kind of matrix (part 2, e.g. q_proj) of a Llama component; "other" for the rest. */
    private static String group(String component, int part) {
        Matcher m = LAYER.matcher(component);
        return m.matches() ? m.group(part) : "other";
    }

    /** Writes the demo's file for a target allocation (README, "Target allocation"). */
    public static void writeJson(Path file, SweepRequest request, ScheduleView schedule) throws IOException {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(),
                AllocationFile.of(request, schedule));
    }

    private record AllocationFile(@JsonProperty("sweep_id") String sweepId, String model, int tokens, int prompts,
                                  double target, int k, String metric,
                                  @JsonProperty("text_documents") int textDocuments,
                                  @JsonProperty("text_window") int textWindow, List<Iteration> iterations,
                                  Map<String, Measure> baselines, Map<String, Map<String, Map<String, Double>>> sparsity,
                                  Schedule schedule) {

        static AllocationFile of(SweepRequest request, ScheduleView schedule) {
            List<Iteration> iterations = schedule.steps().stream().filter(s -> s.allocation() != null)
                    .map(Iteration::of).toList();
            Map<String, Measure> baselines = new LinkedHashMap<>();
            schedule.baselines().forEach(b -> baselines.put(b.name(), Measure.of(b)));
            Map<String, Map<String, Double>> schedules = schedules(request, schedule);
            return new AllocationFile(request.getSweepId(), request.getModel(), request.getTokens(),
                    request.getPrompts().size(), request.getTargetSparsity(), request.getAllocation().getIterations(),
                    request.getAllocation().getMetric(), request.getAllocation().getText().size(),
                    request.getAllocation().getTextWindow(), iterations, baselines,
                    AllocationReport.sparsity(request, schedules),
                    Schedule.of(schedule));
        }
    }

    private record Iteration(int iteration, double target, @JsonProperty("overall_sparsity") double overallSparsity,
                             double threshold, double metric, double fdtm, double sdtm, Double perplexity, Double kl,
                             @JsonProperty("top1_agreement") Double top1Agreement, Map<String, String> schedule) {
        static Iteration of(ScheduleView.Step s) {
            ScheduleView.Text t = s.text();
            return new Iteration(s.allocation().iteration(), s.allocation().target(), s.overallSparsity(),
                    s.allocation().threshold(), s.allocation().metric(), s.fdtm(), s.sdtm(),
                    t == null ? null : t.perplexity(), t == null ? null : t.kl(), t == null ? null : t.top1Agreement(),
                    components(s.schedule()));
        }
    }

    private record Measure(@JsonProperty("overall_sparsity") double overallSparsity, double metric, double fdtm,
                           double sdtm, Double perplexity, Double kl,
                           @JsonProperty("top1_agreement") Double top1Agreement, Map<String, String> schedule) {
        static Measure of(ScheduleView.Baseline b) {
            ScheduleView.Text t = b.text();
            return new Measure(b.overallSparsity(), b.metric(), b.fdtm(), b.sdtm(), t == null ? null : t.perplexity(),
                    t == null ? null : t.kl(), t == null ? null : t.top1Agreement(), components(b.schedule()));
        }
    }

    /** The final schedule by component (what {@code dtm apply --schedule} reads) and how the sweep ended. */
    private record Schedule(Map<String, String> components, @JsonProperty("overall_sparsity") double overallSparsity,
                            double fdtm, double sdtm, @JsonProperty("stop_reason") String stopReason, String failure) {
        static Schedule of(ScheduleView schedule) {
            List<ScheduleView.Step> steps = schedule.steps();
            ScheduleView.Step last = steps.isEmpty() ? null : steps.get(steps.size() - 1);
            return new Schedule(AllocationReport.components(schedule.schedule()), last == null ? 0 : last.overallSparsity(),
                    last == null ? 0 : last.fdtm(), last == null ? 0 : last.sdtm(), schedule.stopReason(),
                    schedule.failure());
        }
    }

    private static Map<String, String> components(List<ScheduleView.Entry> entries) {
        Map<String, String> components = new LinkedHashMap<>();
        entries.forEach(e -> components.put(e.component(), e.compression()));
        return components;
    }
}
