package io.dtm.aggregator;

import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;

import java.util.List;

/**
 * A sweep's progress as the query API returns it: every decided step in round order, the cumulative schedule after
 * the last of them, the round in progress ({@code currentRound}) and whether the sweep has stopped, and why; a failed
 * sweep ({@code stopReason} "failed") says which trial could not be scored and why in {@code failure}.
 */
public record ScheduleView(String sweepId, int rounds, int currentRound, List<Step> steps, List<Entry> schedule,
                           boolean finished, String stopReason, String failure) {

    public ScheduleView {
        steps = List.copyOf(steps);
        schedule = List.copyOf(schedule);
    }

    /** A sweep that has not failed. */
    public ScheduleView(String sweepId, int rounds, int currentRound, List<Step> steps, List<Entry> schedule,
                        boolean finished, String stopReason) {
        this(sweepId, rounds, currentRound, steps, schedule, finished, stopReason, "");
    }

    public record Entry(String component, String compression) {
        static List<Entry> of(List<ScheduleEntry> entries) {
            return entries.stream().map(e -> new Entry(e.getComponent(), e.getCompression())).toList();
        }
    }

    public record Step(int round, List<Entry> committed, List<Entry> schedule, double fdtm, double sdtm,
                       double overallSparsity, double int8Share, double bitsPerWeight, boolean last, String stopReason) {

        public Step {
            committed = List.copyOf(committed);
            schedule = List.copyOf(schedule);
        }

        static Step of(ScheduleStep s) {
            return new Step(s.getRound(), Entry.of(s.getCommitted()), Entry.of(s.getSchedule()), s.getFdtm(), s.getSdtm(),
                    s.getOverallSparsity(), s.getInt8Share(), s.getBitsPerWeight(), s.getLast(), s.getStopReason());
        }
    }
}
