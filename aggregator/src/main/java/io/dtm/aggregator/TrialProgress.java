package io.dtm.aggregator;

import io.dtm.planner.Ranking;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingEntry;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.TextSums;

import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What the shards of one trial that are in so far add up to: their prompts' FDTs in prompt order (a quantile of them
 * needs every prompt), summarised; the text metrics of the shard that carried the text; the schedule a baseline shard
 * scored (every shard of a trial scores the same one, {@link ResultChecks} sees to it).
 */
record TrialProgress(String component, String compression, int[] fdt, DivergenceSummary summary, TextSums text,
                     List<ScheduleEntry> schedule, boolean complete) {

    /** Empty when no shard is in; the shards must be validated (one trial, consistent shard layout). */
    static Optional<TrialProgress> of(List<DivergenceResult> shards) {
        if (shards.isEmpty()) {
            return Optional.empty();
        }
        List<DivergenceResult> ordered = shards.stream().sorted(Comparator.comparingInt(DivergenceResult::getPromptOffset))
                .toList();
        int[] fdt = ordered.stream().flatMap(s -> s.getFdt().stream()).mapToInt(Integer::intValue).toArray();
        double[] sdt = ordered.stream().flatMap(s -> s.getSdt().stream()).mapToDouble(Double::doubleValue).toArray();
        DivergenceResult first = ordered.get(0);
        TextSums text = ordered.stream().map(DivergenceResult::getText).filter(Objects::nonNull).findFirst().orElse(null);
        return Optional.of(new TrialProgress(first.getComponent(), first.getCompression(), fdt,
                DivergenceSummary.of(fdt, sdt, first.getTokens()), text, first.getSchedule(),
                ordered.size() == first.getShardCount()));
    }

    /** The trial's ranking entry; {@code sourceBits} are the sweep's, for the candidate's bits per weight. */
    RankingEntry rankingEntry(int sourceBits) {
        return Ranking.entry(component, compression, sourceBits, summary, complete);
    }
}
