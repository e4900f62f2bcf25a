package io.dtm.aggregator;

import io.dtm.planner.Ranking;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingEntry;

import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/** What the shards of one trial that are in so far add up to: their prompts, in prompt order, summarised. */
record TrialProgress(String component, String compression, DivergenceSummary summary, boolean complete) {

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
        return Optional.of(new TrialProgress(first.getComponent(), first.getCompression(),
                DivergenceSummary.of(fdt, sdt, first.getTokens()), ordered.size() == first.getShardCount()));
    }

    /** The trial's ranking entry; {@code sourceBits} are the sweep's, for the candidate's bits per weight. */
    RankingEntry rankingEntry(int sourceBits) {
        return Ranking.entry(component, compression, sourceBits, summary, complete);
    }
}
