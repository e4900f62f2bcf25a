package io.dtm.planner;

import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.RankingEntry;

import java.util.Collection;
import java.util.Comparator;
import java.util.List;

/**
 * The order in which a round's candidates are ranked (dtm-spec, "The greedy schedule"): higher FDTM first; on equal
 * FDTM the higher SDTM loses; then component name, then compression text, so equal scores still give one fixed order
 * on every instance and in every replay.
 */
public final class Ranking {
    private Ranking() {}

    /**
     * The FDTM/SDTM part is {@link DivergenceSummary#BEST_FIRST} itself, so the tie rule is written once for the whole
     * project; that comparator reads only {@code fdtm} and {@code sdtm} of the summary view built here.
     */
    public static final Comparator<RankingEntry> BEST_FIRST =
            Comparator.comparing(Ranking::scores, DivergenceSummary.BEST_FIRST)
                    .thenComparing(RankingEntry::getComponent)
                    .thenComparing(RankingEntry::getCompression);

    /** A ranking entry for one candidate trial from the summary of the prompts scored so far. */
    public static RankingEntry entry(String component, String compression, DivergenceSummary summary, boolean complete) {
        return RankingEntry.newBuilder()
                .setComponent(component)
                .setCompression(compression)
                .setFdtm(summary.fdtm())
                .setSdtm(summary.sdtm())
                .setFdtMedian(summary.fdtMedian())
                .setFdtP10(summary.fdtP10())
                .setShareAtN(summary.shareAtN())
                .setPrompts(summary.prompts())
                .setComplete(complete)
                .build();
    }

    /** A new list of the entries, best first. */
    public static List<RankingEntry> sorted(Collection<RankingEntry> entries) {
        return entries.stream().sorted(BEST_FIRST).toList();
    }

    private static DivergenceSummary scores(RankingEntry e) {
        return new DivergenceSummary(e.getPrompts(), 0, e.getFdtm(), e.getFdtMedian(), e.getFdtP10(), e.getShareAtN(),
                e.getSdtm());
    }
}
