package io.dtm.aggregator;

import io.dtm.schemas.avro.RankingEntry;
import io.dtm.schemas.avro.RankingUpdate;

import java.util.List;

/** A round's ranking as the query API returns it (JSON over HTTP, or in-process): best first. */
public record RankingView(String sweepId, int round, int trialsTotal, int trialsDone, boolean decided, long updatedAtMs,
                          List<Entry> entries) {

    public RankingView {
        entries = List.copyOf(entries);
    }

    /**
     * One candidate, with the component's sparsity and bits per weight under its compression; only complete ones count
     * for the round's decision.
     */
    public record Entry(String component, String compression, double sparsity, double bitsPerWeight, double fdtm,
                        double sdtm, double fdtMedian, double fdtP10, double shareAtN, int prompts, boolean complete) {

        static Entry of(RankingEntry e) {
            return new Entry(e.getComponent(), e.getCompression(), e.getSparsity(), e.getBitsPerWeight(), e.getFdtm(),
                    e.getSdtm(), e.getFdtMedian(), e.getFdtP10(), e.getShareAtN(), e.getPrompts(), e.getComplete());
        }
    }

    static RankingView of(RankingUpdate u) {
        return new RankingView(u.getSweepId(), u.getRound(), u.getTrialsTotal(), u.getTrialsDone(), u.getDecided(),
                u.getUpdatedAtMs(), u.getEntries().stream().map(Entry::of).toList());
    }
}
