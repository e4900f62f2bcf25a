package io.dtm.planner;

import io.dtm.planner.TargetAllocation.Commit;
import io.dtm.planner.TargetAllocation.Component;
import io.dtm.planner.TargetAllocation.Plan;
import io.dtm.planner.TargetAllocation.Trial;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.AllocationRequest;
import io.dtm.schemas.avro.AllocationStep;
import io.dtm.schemas.avro.BaselineMeasure;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TextSums;
import io.dtm.schemas.avro.TrialKind;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A target-allocation sweep ({@link TargetAllocation}, dtm-spec "Target allocation") as rounds of trials, the way
 * {@link Rounds} runs a greedy sweep. Pure, so the publisher and the aggregator (and a replay after a restart) plan the
 * same trials with the same ids.
 *
 * <p>Round {@code r} is iteration {@code i = r + 1}. Its trials are the plan's component trials (up to 3 per component)
 * on the schedule {@code S} the previous round ended with, all {@code CANDIDATE}s; {@code m(S)} is not a trial of its
 * own: it is the metric the previous round's measure already took ({@code N} for the empty schedule of round 0, where
 * every prompt scores FDT = N). When they are all in, {@link #decide} commits and emits the one {@code SCHEDULE} trial
 * that measures the new schedule, which becomes the next round's {@code S}: 3·C + 1 trials an iteration.
 *
 * <p>The two baselines ({@link #UNIFORM}, {@link #GLOBAL}) are {@code BASELINE} trials published with round 0, so that
 * they are scored alongside the first iteration; the sweep's last step waits for them and carries them. The global
 * one's schedule needs the weights: its trial names the components at the uniform sparsity, and the worker replaces
 * their sparsities by one magnitude threshold over all of them reaching the same overall sparsity, and reports the
 * schedule it scored.
 *
 * <p>Text metrics: every schedule measure and baseline carries the sweep's text on its first shard only, so one worker
 * scores the whole text for a trial (the sums of {@link TextSums} need no combining across shards, and a text with
 * nothing to score fails that one trial, naming it).
 */
public final class Allocations {
    private Allocations() {}

    /** Every linear component at {@code prune(T)}. */
    public static final String UNIFORM = "uniform";
    /** One magnitude threshold over all linear components together. */
    public static final String GLOBAL = "global";
    /** The baselines in the order they are reported. */
    public static final List<String> BASELINES = List.of(UNIFORM, GLOBAL);

    /** Whether the sweep is a target allocation rather than a greedy sweep. */
    public static boolean isTarget(SweepRequest sweep) {
        return sweep.getAllocation() != null;
    }

    /** {@code T} and {@code K}. */
    public static TargetAllocation allocation(SweepRequest sweep) {
        return new TargetAllocation(sweep.getTargetSparsity(), request(sweep).getIterations());
    }

    public static AllocationMetric metric(SweepRequest sweep) {
        return AllocationMetric.parse(request(sweep).getMetric());
    }

    /** Every shard of round {@code round}'s component trials on {@code schedule}, the schedule round r − 1 ended with. */
    public static List<ComponentTrial> candidates(SweepRequest sweep, int round, List<ScheduleEntry> schedule) {
        List<ScheduleEntry> base = TrialPlanner.sorted(schedule);
        List<Trial> trials = plan(sweep, round, base).trials();
        List<ComponentTrial> shards = new ArrayList<>();
        for (Trial t : trials) {
            shards.addAll(TrialPlanner.shards(sweep, round, TrialKind.CANDIDATE, t.component(),
                    t.compression().toString(), base, trials.size()));
        }
        return shards;
    }

    /** Every shard of the two baseline trials, published with round 0. */
    public static List<ComponentTrial> baselines(SweepRequest sweep) {
        List<ScheduleEntry> uniform = uniformSchedule(sweep);
        List<ComponentTrial> shards = new ArrayList<>();
        for (String name : BASELINES) {
            shards.addAll(withText(sweep, TrialPlanner.shards(sweep, 0, TrialKind.BASELINE, name, null, uniform, 1)));
        }
        return shards;
    }

    /** The trial id of baseline {@code name} (one of {@link #BASELINES}). */
    public static String baselineTrialId(SweepRequest sweep, String name) {
        if (!BASELINES.contains(name)) {
            throw new IllegalArgumentException("unknown baseline '" + name + "' (expected " + BASELINES + ")");
        }
        return TrialPlanner.trialId(sweep.getSweepId(), 0, TrialKind.BASELINE, name, null, uniformSchedule(sweep));
    }

    /** The uniform baseline's schedule: every component at {@code prune(T)}, in canonical order. */
    public static List<ScheduleEntry> uniformSchedule(SweepRequest sweep) {
        List<ScheduleEntry> entries = new ArrayList<>();
        Baselines.uniform(allocation(sweep), names(sweep)).forEach((c, spec) -> entries.add(entry(c, spec)));
        return TrialPlanner.sorted(entries);
    }

    /**
     * Steps 2–4 of an iteration whose component trials are all complete: the curves from each trial's per-prompt FDTs
     * (all shards, in prompt order: a quantile needs every prompt), the threshold, the commit, and the trial that
     * measures the new schedule. {@code m(S)} is the metric of the step {@code before} (N in round 0).
     *
     * @param fdtByTrial the per-prompt FDTs of every component trial of the round, by trial id
     */
    public static Rounds.Decision decide(SweepRequest sweep, int round, ScheduleStep before,
                                         Map<String, int[]> fdtByTrial) {
        List<ScheduleEntry> schedule = TrialPlanner.sorted(Rounds.scheduleOf(before));
        Plan plan = plan(sweep, round, schedule);
        AllocationMetric metric = metric(sweep);
        Map<Trial, Double> measured = new HashMap<>();
        for (Trial t : plan.trials()) {
            String id = TrialPlanner.trialId(sweep.getSweepId(), round, TrialKind.CANDIDATE, t.component(),
                    t.compression().toString(), schedule);
            int[] fdt = fdtByTrial.get(id);
            if (fdt == null) {
                throw new IllegalArgumentException("no result for trial " + id + " (" + t.component() + " "
                        + t.compression() + ") of round " + round);
            }
            measured.put(t, metric.of(fdt, sweep.getTokens()));
        }
        double scheduleMetric = before == null ? sweep.getTokens() : before.getAllocation().getMetric();
        Commit commit = plan.commit(scheduleMetric, measured);
        List<ScheduleEntry> committed = new ArrayList<>();
        List<ScheduleEntry> next = new ArrayList<>();
        for (int c = 0; c < commit.components().size(); c++) {
            Component now = commit.components().get(c);
            if (now.sparsity() > 0) {
                next.add(entry(now.name(), now.compression()));
            }
            if (!now.equals(plan.components().get(c))) {
                committed.add(entry(now.name(), now.compression()));
            }
        }
        next = TrialPlanner.sorted(next);
        ScheduleStep step = Rounds.step(sweep, round, TrialPlanner.sorted(committed), next);
        step.setAllocation(new AllocationStep(commit.iterationTarget(), commit.threshold(), 0.0));
        return new Rounds.Decision(step, withText(sweep, TrialPlanner.scheduleMeasure(sweep, round, next)));
    }

    /**
     * Completes a decided iteration with its schedule's measurement and decides whether the sweep goes on: it stops
     * after its K-th iteration, or earlier once the overall sparsity reaches T (a flat curve can overshoot).
     *
     * @param fdt  the measure's per-prompt FDTs, all shards in prompt order
     * @param text its text metrics, null when the sweep has no text
     */
    public static Rounds.Measured measured(SweepRequest sweep, ScheduleStep decided, DivergenceSummary summary,
                                           int[] fdt, TextSums text) {
        int round = decided.getRound();
        boolean done = round + 1 >= request(sweep).getIterations()
                || decided.getOverallSparsity() >= sweep.getTargetSparsity() - TrialPlanner.SPARSITY_SLACK;
        ScheduleStep step = ScheduleStep.newBuilder(decided)
                .setFdtm(summary.fdtm())
                .setSdtm(summary.sdtm())
                .setAllocation(AllocationStep.newBuilder(decided.getAllocation())
                        .setMetric(metric(sweep).of(fdt, sweep.getTokens())).build())
                .setText(text)
                .setLast(done)
                .setStopReason(done ? StopReason.TARGET_SPARSITY.code() : "")
                .build();
        return new Rounds.Measured(step, done ? List.of() : candidates(sweep, round + 1, decided.getSchedule()));
    }

    /**
     * A measured baseline: the schedule the trial scored (for the global one, as the worker computed it) and its
     * scores, including the sweep's metric.
     */
    public static BaselineMeasure baseline(SweepRequest sweep, String name, List<ScheduleEntry> scored,
                                           DivergenceSummary summary, int[] fdt, TextSums text) {
        List<ScheduleEntry> schedule = TrialPlanner.sorted(scored);
        return BaselineMeasure.newBuilder()
                .setName(name)
                .setSchedule(new ArrayList<>(schedule))
                .setOverallSparsity(Rounds.overallSparsity(sweep, schedule))
                .setFdtm(summary.fdtm())
                .setSdtm(summary.sdtm())
                .setMetric(metric(sweep).of(fdt, sweep.getTokens()))
                .setText(text)
                .build();
    }

    /** The sweep's last step with its baselines, in {@link #BASELINES} order. */
    public static ScheduleStep withBaselines(ScheduleStep last, List<BaselineMeasure> baselines) {
        if (!last.getLast()) {
            throw new IllegalArgumentException("baselines go on the sweep's last step, not round " + last.getRound());
        }
        if (!baselines.stream().map(BaselineMeasure::getName).toList().equals(BASELINES)) {
            throw new IllegalArgumentException("expected the baselines " + BASELINES + ", got "
                    + baselines.stream().map(BaselineMeasure::getName).toList());
        }
        return ScheduleStep.newBuilder(last).setBaselines(new ArrayList<>(baselines)).build();
    }

    /**
     * Why a global baseline's scored schedule cannot be the one its trial asked for, or null when it can: exactly the
     * sweep's components, each pruned, at the uniform schedule's overall sparsity (to within what the schedule's text
     * keeps of each component's share).
     */
    public static String globalScheduleProblem(SweepRequest sweep, List<ScheduleEntry> scored) {
        List<String> expected = names(sweep).stream().sorted().toList();
        List<String> got = scored.stream().map(ScheduleEntry::getComponent).sorted().toList();
        if (!got.equals(expected)) {
            return "the global baseline must prune exactly the sweep's " + expected.size() + " components, got "
                    + got.size();
        }
        for (ScheduleEntry e : scored) {
            try {
                if (!CompressionSpec.parse(e.getCompression()).isPrune()) {
                    return "the global baseline must prune " + e.getComponent() + ", got " + e.getCompression();
                }
            } catch (IllegalArgumentException bad) {
                return "the global baseline's compression of " + e.getComponent() + ": " + bad.getMessage();
            }
        }
        double overall = Rounds.overallSparsity(sweep, scored);
        double target = Rounds.overallSparsity(sweep, uniformSchedule(sweep));
        return Math.abs(overall - target) <= GLOBAL_TOLERANCE ? null
                : "the global baseline's overall sparsity " + overall + " is not the target's " + target;
    }

    /**
     * The global threshold zeroes {@code round(T·Σ n_c)} entries, half an entry off {@code T}, and each component's
     * share {@code k_c/n_c} travels as text to 8 decimals: far below this on any model.
     */
    private static final double GLOBAL_TOLERANCE = 1e-6;

    private static AllocationRequest request(SweepRequest sweep) {
        if (sweep.getAllocation() == null) {
            throw new IllegalArgumentException("sweep " + sweep.getSweepId() + " is not a target allocation");
        }
        return sweep.getAllocation();
    }

    private static Plan plan(SweepRequest sweep, int round, List<ScheduleEntry> schedule) {
        Map<String, Component> applied = applied(sweep, schedule);
        return allocation(sweep).plan(round + 1, sweep.getComponents().stream()
                .map(c -> applied.getOrDefault(c.getName(),
                        new Component(c.getName(), c.getParams(), 0, TargetAllocation.PRUNE, kinds(sweep, c))))
                .toList());
    }

    /**
     * The kinds a target allocation offers {@code component}: the sweep's {@code kinds} that fit its width, or
     * {@code prune} without them (dtm-spec's reading).
     */
    static List<Kind> kinds(SweepRequest sweep, ComponentInfo component) {
        if (sweep.getKinds().isEmpty()) {
            return List.of(TargetAllocation.PRUNE);
        }
        return sweep.getKinds().stream().map(Kind::parse)
                .filter(k -> component.getColumns() < 1 || k.unfit(component.getColumns()).isEmpty()).toList();
    }

    /**
     * Each scheduled component's sparsity {@code s_c} and the kind that reached it. Committed sparsities are on the
     * {@code 1e-4} grid, whose text parses back to the same double, so a replay plans exactly the same trials.
     */
    private static Map<String, Component> applied(SweepRequest sweep, List<ScheduleEntry> schedule) {
        Map<String, ComponentInfo> components = new HashMap<>();
        sweep.getComponents().forEach(c -> components.put(c.getName(), c));
        Map<String, Component> applied = new HashMap<>();
        for (ScheduleEntry e : schedule) {
            ComponentInfo info = components.get(e.getComponent());
            CompressionSpec spec = CompressionSpec.parse(e.getCompression());
            CompressionSpec.Step step = spec.steps().size() == 1 ? spec.steps().get(0) : null;
            Kind kind = step instanceof CompressionSpec.Prune ? TargetAllocation.PRUNE
                    : step instanceof CompressionSpec.Wanda ? new Kind.Stepped("wanda")
                    : step instanceof CompressionSpec.NM ? new Kind.Fixed(step) : null;
            if (info == null || kind == null) {
                throw new IllegalArgumentException("a target allocation's schedule holds only prune, wanda and nm"
                        + " steps of the sweep's components, not " + e.getComponent() + " " + e.getCompression());
            }
            applied.put(e.getComponent(), new Component(info.getName(), info.getParams(), spec.zeroShare(), kind,
                    kinds(sweep, info)));
        }
        return applied;
    }

    private static List<ComponentTrial> withText(SweepRequest sweep, List<ComponentTrial> shards) {
        AllocationRequest request = request(sweep);
        if (!request.getText().isEmpty()) {
            shards.get(0).setText(new ArrayList<>(request.getText()));
            shards.get(0).setTextWindow(request.getTextWindow());
        }
        return shards;
    }

    private static List<String> names(SweepRequest sweep) {
        return sweep.getComponents().stream().map(ComponentInfo::getName).toList();
    }

    private static ScheduleEntry entry(String component, CompressionSpec compression) {
        return new ScheduleEntry(component, compression.toString());
    }
}
