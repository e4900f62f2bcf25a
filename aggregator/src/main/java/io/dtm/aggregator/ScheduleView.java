package io.dtm.aggregator;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.dtm.schemas.TextScore;
import io.dtm.schemas.avro.AllocationStep;
import io.dtm.schemas.avro.BaselineMeasure;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.TextSums;

import java.util.List;

/**
 * A sweep's progress as the query API returns it: every decided step in round order, the cumulative schedule after
 * the last of them, the round in progress ({@code currentRound}) and whether the sweep has stopped, and why; a failed
 * sweep ({@code stopReason} "failed") says which trial could not be scored and why in {@code failure}. A target
 * allocation's steps also say what their iteration aimed at and decided ({@code allocation}), and once it has finished
 * the {@code baselines} it is compared with; {@code text} is a schedule's text metrics. Those keys are left out of the
 * JSON where they do not apply, so a greedy sweep's answer is what it was.
 *
 * @param rounds a greedy sweep's rounds, or a target allocation's iterations
 */
public record ScheduleView(String sweepId, int rounds, int currentRound, List<Step> steps, List<Entry> schedule,
                           boolean finished, String stopReason, String failure,
                           @JsonInclude(JsonInclude.Include.NON_EMPTY) List<Baseline> baselines) {

    public ScheduleView {
        steps = List.copyOf(steps);
        schedule = List.copyOf(schedule);
        baselines = baselines == null ? List.of() : List.copyOf(baselines); // a greedy sweep's JSON has no key
    }

    /** A sweep that has not failed and has no baselines. */
    public ScheduleView(String sweepId, int rounds, int currentRound, List<Step> steps, List<Entry> schedule,
                        boolean finished, String stopReason) {
        this(sweepId, rounds, currentRound, steps, schedule, finished, stopReason, "", List.of());
    }

    public record Entry(String component, String compression) {
        public static List<Entry> of(List<ScheduleEntry> entries) {
            return entries.stream().map(e -> new Entry(e.getComponent(), e.getCompression())).toList();
        }
    }

    /**
     * @param allocation a target allocation's iteration {@code round + 1}; null in a greedy sweep
     * @param text       the schedule's text metrics; null when the sweep measures none
     */
    public record Step(int round, List<Entry> committed, List<Entry> schedule, double fdtm, double sdtm,
                       double overallSparsity, double int8Share, double bitsPerWeight, boolean last, String stopReason,
                       @JsonInclude(JsonInclude.Include.NON_NULL) Allocation allocation,
                       @JsonInclude(JsonInclude.Include.NON_NULL) Text text) {

        public Step {
            committed = List.copyOf(committed);
            schedule = List.copyOf(schedule);
        }

        public static Step of(ScheduleStep s) {
            return new Step(s.getRound(), Entry.of(s.getCommitted()), Entry.of(s.getSchedule()), s.getFdtm(),
                    s.getSdtm(), s.getOverallSparsity(), s.getInt8Share(), s.getBitsPerWeight(), s.getLast(), s.getStopReason(),
                    Allocation.of(s.getRound(), s.getAllocation()), Text.of(s.getText()));
        }
    }

    /**
     * What a target-allocation iteration aimed at ({@code t_i}), the threshold {@code f} it settled on and the
     * allocation metric of its schedule.
     */
    public record Allocation(int iteration, double target, double threshold, double metric) {
        static Allocation of(int round, AllocationStep a) {
            return a == null ? null : new Allocation(round + 1, a.getIterationTarget(), a.getThreshold(), a.getMetric());
        }
    }

    /** Text metrics (dtm-spec "Text metrics") over {@code predicted} tokens. */
    public record Text(long predicted, double perplexity, double kl, double top1Agreement) {
        public static Text of(TextSums t) {
            if (t == null) {
                return null;
            }
            TextScore score = new TextScore(t.getPredicted(), t.getNllSum(), t.getKlSum(), t.getAgreed());
            return new Text(score.predicted(), score.perplexity(), score.klMean(), score.top1Agreement());
        }
    }

    /** A baseline at the same target, measured like the iterations. */
    public record Baseline(String name, List<Entry> schedule, double overallSparsity, double fdtm, double sdtm,
                           double metric, @JsonInclude(JsonInclude.Include.NON_NULL) Text text) {
        public Baseline {
            schedule = List.copyOf(schedule);
        }

        public static Baseline of(BaselineMeasure b) {
            return new Baseline(b.getName(), Entry.of(b.getSchedule()), b.getOverallSparsity(), b.getFdtm(),
                    b.getSdtm(), b.getMetric(), Text.of(b.getText()));
        }
    }
}
