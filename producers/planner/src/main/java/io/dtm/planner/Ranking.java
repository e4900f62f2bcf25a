package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.RankingEntry;

import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The order in which a round's candidates are ranked (dtm-spec, "The greedy schedule"): higher FDTM first; on equal
 * FDTM the higher SDTM loses; then component name, then compression text, so equal scores still give one fixed order
 * on every instance and in every replay.
 */
public final class Ranking {
    private Ranking() {}

    /** The FDTM/SDTM part is {@link DivergenceSummary#bestFirst}, the tie rule written once for the whole project. */
    public static final Comparator<RankingEntry> BEST_FIRST =
            DivergenceSummary.bestFirst(RankingEntry::getFdtm, RankingEntry::getSdtm)
                    .thenComparing(RankingEntry::getComponent)
                    .thenComparing(RankingEntry::getCompression);

    /**
     * A ranking entry for one candidate trial from the summary of the prompts scored so far, with the component's
     * {@link Footprint} under the candidate's compression, its untouched values at {@code sourceBits}.
     */
    public static RankingEntry entry(String component, String compression, int sourceBits, DivergenceSummary summary,
                                     boolean complete) {
        Footprint footprint = Footprint.of(CompressionSpec.parse(compression), sourceBits);
        return RankingEntry.newBuilder()
                .setComponent(component)
                .setCompression(compression)
                .setSparsity(footprint.sparsity())
                .setBitsPerWeight(footprint.bitsPerWeight())
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

    /**
     * A round's ranking with {@code entry} in place of its candidate's earlier entry (a round has one trial per action,
     * so component and compression name the candidate), best first.
     */
    public static List<RankingEntry> with(Collection<RankingEntry> ranking, RankingEntry entry) {
        return Stream.concat(ranking.stream().filter(e -> !(e.getComponent().equals(entry.getComponent())
                        && e.getCompression().equals(entry.getCompression()))), Stream.of(entry))
                .sorted(BEST_FIRST).toList();
    }
}
