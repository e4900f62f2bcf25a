package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.RankingEntry;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * How a sweep moves from one round to the next (dtm-spec, "The greedy schedule"): what a decided round commits, the
 * schedule step that follows, and when the sweep stops. Pure, like {@link TrialPlanner}: the aggregator keeps the
 * steps in its stores and publishes what these functions return, and a replay computes the same.
 *
 * <p>A step's {@code before} is the step the previous round ended with, null in round 0 (the base model).
 */
public final class Rounds {
    private Rounds() {}

    /** What follows a measured probe of {@code cumulative-floor:X}: the next probe, or the round's result. */
    public sealed interface Outcome permits Decision, Measured {}

    /**
     * A decided round: the step it leads to and the trial that measures its new schedule, whose shards must be scored
     * before the step is published. Without a measure the sweep stops here and the step is its last.
     */
    public record Decision(ScheduleStep step, List<ComponentTrial> measure) implements Outcome {
        public Decision {
            if (step == null || measure == null) {
                throw new IllegalArgumentException("a decision needs a step and its measure (empty when it stops)");
            }
            if (measure.isEmpty() != step.getLast()) {
                throw new IllegalArgumentException("a step is the last exactly when nothing is left to measure");
            }
            measure = List.copyOf(measure);
        }

        public boolean stops() {
            return measure.isEmpty();
        }
    }

    /** A measured schedule: its completed step, and the next round's trials (none when the step is the last). */
    public record Measured(ScheduleStep step, List<ComponentTrial> nextRound) implements Outcome {
        public Measured {
            if (step == null || nextRound == null) {
                throw new IllegalArgumentException("a measured round needs its step and the next round (or none)");
            }
            if (step.getLast() != nextRound.isEmpty()) {
                throw new IllegalArgumentException("the next round is planned exactly when the sweep goes on");
            }
            nextRound = List.copyOf(nextRound);
        }
    }

    /**
     * The trials published with the sweep: round 0's, and a target allocation's baselines ({@link Allocations}).
     */
    public static List<ComponentTrial> first(SweepRequest sweep) {
        if (!Allocations.isTarget(sweep)) {
            return TrialPlanner.candidates(sweep, 0, List.of());
        }
        List<ComponentTrial> trials = new ArrayList<>(Allocations.candidates(sweep, 0, List.of()));
        trials.addAll(Allocations.baselines(sweep));
        return trials;
    }

    /**
     * Applies the sweep's commit rule to a round whose candidates are all complete. Nothing to commit under a rule
     * that commits something means no candidate is above the floor: the sweep stops with the schedule it has.
     * Otherwise the new schedule is measured on its own, because candidates were each scored alone and their effects
     * need not add up. Under {@code cumulative-floor:X} what is measured is the first probe of the {@link PrefixSearch}
     * (the whole ranking), and {@link #probed} takes it from there.
     */
    public static Decision decide(SweepRequest sweep, int round, ScheduleStep before, List<RankingEntry> ranking) {
        CommitRule rule = CommitRule.parse(sweep.getCommitRule());
        List<RankingEntry> chosen = rule.select(ranking, sweep.getFdtmFloor());
        if (chosen.isEmpty() && rule.commitsAny()) {
            return new Decision(unchangedStop(sweep, round, before, StopReason.FDTM_FLOOR), List.of());
        }
        return prefix(sweep, round, before, chosen, chosen.size());
    }

    /**
     * A {@code cumulative-floor:X} round after each measured probe: the next prefix to measure, or the longest prefix
     * that kept FDTM ≥ X, committed with the measurement it already has (a round in which none did stops the sweep
     * with its schedule unchanged).
     *
     * @param ranking the round's complete ranking
     * @param probes  every prefix measured so far in this round, in any order
     */
    public static Outcome probed(SweepRequest sweep, int round, ScheduleStep before, List<RankingEntry> ranking,
                                 List<PrefixSearch.Probe> probes) {
        CommitRule rule = CommitRule.parse(sweep.getCommitRule());
        if (!rule.cumulative()) {
            throw new IllegalArgumentException("sweep " + sweep.getSweepId() + " commits by " + rule
                    + ", which measures no prefixes");
        }
        List<RankingEntry> chosen = rule.select(ranking, sweep.getFdtmFloor());
        PrefixSearch search = new PrefixSearch(chosen.size(), rule.value());
        OptionalInt next = search.next(probes);
        if (next.isPresent()) {
            return prefix(sweep, round, before, chosen, next.getAsInt());
        }
        int longest = search.longest(probes);
        if (longest == 0) {
            return new Measured(unchangedStop(sweep, round, before, StopReason.FDTM_FLOOR), List.of());
        }
        PrefixSearch.Probe kept = probes.stream().filter(p -> p.length() == longest).findFirst().orElseThrow();
        return measured(sweep, prefix(sweep, round, before, chosen, longest).step(), kept.fdtm(), kept.sdtm());
    }

    /** The step committing the first {@code length} of {@code chosen}, and the trial that measures its schedule. */
    private static Decision prefix(SweepRequest sweep, int round, ScheduleStep before, List<RankingEntry> chosen,
                                   int length) {
        List<ScheduleEntry> committed = chosen.subList(0, length).stream()
                .map(e -> new ScheduleEntry(e.getComponent(), e.getCompression())).toList();
        List<ScheduleEntry> next = TrialPlanner.apply(scheduleOf(before), committed);
        return new Decision(step(sweep, round, committed, next), TrialPlanner.scheduleMeasure(sweep, round, next));
    }

    /**
     * Completes a decided step with its schedule's measurement and decides whether the sweep goes on: it stops once the
     * overall sparsity reaches the target, when no action is left, or after its last round.
     */
    public static Measured measured(SweepRequest sweep, ScheduleStep decided, DivergenceSummary measurement) {
        return measured(sweep, decided, measurement.fdtm(), measurement.sdtm());
    }

    private static Measured measured(SweepRequest sweep, ScheduleStep decided, double fdtm, double sdtm) {
        int round = decided.getRound();
        List<ComponentTrial> nextRound = TrialPlanner.candidates(sweep, round + 1, decided.getSchedule());
        StopReason stop = decided.getOverallSparsity() >= sweep.getTargetSparsity() - TrialPlanner.SPARSITY_SLACK
                ? StopReason.TARGET_SPARSITY
                : nextRound.isEmpty() ? StopReason.NO_ACTIONS
                : round + 1 >= sweep.getRounds() ? StopReason.ROUNDS
                : null;
        ScheduleStep step = ScheduleStep.newBuilder(decided)
                .setFdtm(fdtm)
                .setSdtm(sdtm)
                .setLast(stop != null)
                .setStopReason(stop == null ? "" : stop.code())
                .build();
        return new Measured(step, stop == null ? nextRound : List.of());
    }

    /** The last step of a sweep one of whose trials of {@code round} could not be scored, saying why. */
    public static ScheduleStep failed(SweepRequest sweep, int round, ScheduleStep before, String failure) {
        return ScheduleStep.newBuilder(unchangedStop(sweep, round, before, StopReason.FAILED)).setFailure(failure)
                .build();
    }

    /**
     * The last step of a sweep that stops in {@code round} with its schedule unchanged: nothing committed, and the
     * schedule's last measurement stands (an empty schedule is the base model itself).
     */
    private static ScheduleStep unchangedStop(SweepRequest sweep, int round, ScheduleStep before, StopReason reason) {
        ScheduleStep stop = step(sweep, round, List.of(), scheduleOf(before));
        stop.setFdtm(before == null ? sweep.getTokens() : before.getFdtm());
        stop.setSdtm(before == null ? 0.0 : before.getSdtm());
        stop.setLast(true);
        stop.setStopReason(reason.code());
        return stop;
    }

    /**
     * A step's committed entries and schedule, the schedule's {@link Footprint} over the components' parameters (each
     * compression counting the zeros it is meant to leave) and their share in int8. Measurements and the stop are
     * filled in later.
     */
    static ScheduleStep step(SweepRequest sweep, int round, List<ScheduleEntry> committed,
                             List<ScheduleEntry> schedule) {
        Footprint footprint = Footprint.of(sweep, schedule);
        return ScheduleStep.newBuilder()
                .setSweepId(sweep.getSweepId())
                .setRound(round)
                .setCommitted(new ArrayList<>(committed))
                .setSchedule(new ArrayList<>(schedule))
                .setOverallSparsity(footprint.sparsity())
                .setInt8Share(int8Share(sweep, schedule))
                .setBitsPerWeight(footprint.bitsPerWeight())
                .build();
    }

    /** The share of the sweep's component parameters {@code schedule} zeroes. */
    static double overallSparsity(SweepRequest sweep, List<ScheduleEntry> schedule) {
        return Footprint.of(sweep, schedule).sparsity();
    }

    private static double int8Share(SweepRequest sweep, List<ScheduleEntry> schedule) {
        Set<String> int8 = schedule.stream().filter(e -> CompressionSpec.parse(e.getCompression()).isInt8())
                .map(ScheduleEntry::getComponent).collect(Collectors.toSet());
        double params = 0;
        double quantized = 0;
        for (ComponentInfo component : sweep.getComponents()) {
            params += component.getParams();
            quantized += int8.contains(component.getName()) ? component.getParams() : 0;
        }
        return quantized / params;
    }

    /** The schedule a round starts from: what the previous round ended with. */
    public static List<ScheduleEntry> scheduleOf(ScheduleStep before) {
        return before == null ? List.of() : before.getSchedule();
    }
}
