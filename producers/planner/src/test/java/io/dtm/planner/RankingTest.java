package io.dtm.planner;

import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.RankingEntry;
import org.junit.jupiter.api.Test;

import java.util.List;

import static io.dtm.planner.TestSweeps.ranked;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RankingTest {

    @Test
    void higherFdtmRanksFirst() {
        List<RankingEntry> sorted = Ranking.sorted(List.of(ranked("a", "prune:0.1", 10, 0.1), ranked("b", "prune:0.1", 30, 0.5),
                ranked("c", "prune:0.1", 20, 0.0)));
        assertEquals(List.of("b", "c", "a"), sorted.stream().map(RankingEntry::getComponent).toList());
    }

    @Test
    void onEqualFdtmTheHigherSdtmLoses() {
        List<RankingEntry> sorted = Ranking.sorted(List.of(ranked("a", "prune:0.1", 20, 0.4), ranked("b", "prune:0.1", 20, 0.2)));
        assertEquals(List.of("b", "a"), sorted.stream().map(RankingEntry::getComponent).toList());
    }

    @Test
    void fullTiesAreOrderedByComponentThenCompression() {
        List<RankingEntry> sorted = Ranking.sorted(List.of(ranked("b", "prune:0.1", 20, 0.2), ranked("a", "prune:0.2", 20, 0.2),
                ranked("a", "int8_rowwise", 20, 0.2)));
        assertEquals(List.of("a int8_rowwise", "a prune:0.2", "b prune:0.1"),
                sorted.stream().map(e -> e.getComponent() + " " + e.getCompression()).toList());
    }

    @Test
    void agreesWithTheSharedSummaryOrder() {
        DivergenceSummary better = DivergenceSummary.of(new int[] {8, 8}, new double[] {0.0, 0.25}, 8);
        DivergenceSummary worse = DivergenceSummary.of(new int[] {8, 8}, new double[] {0.5, 0.25}, 8);
        assertTrue(DivergenceSummary.BEST_FIRST.compare(better, worse) < 0);
        assertTrue(Ranking.BEST_FIRST.compare(Ranking.entry("z", "prune:0.1", 16, better, true),
                Ranking.entry("a", "prune:0.1", 16, worse, true)) < 0);
    }

    @Test
    void entryCarriesEverySummaryFigure() {
        DivergenceSummary summary = DivergenceSummary.of(new int[] {0, 4, 8, 8}, new double[] {1.0, 0.5, 0.0, 0.0}, 8);
        RankingEntry e = Ranking.entry("a", "int8_rowwise", 16, summary, false);
        assertEquals(5.0, e.getFdtm());
        assertEquals(0.375, e.getSdtm());
        assertEquals(6.0, e.getFdtMedian());
        assertEquals(summary.fdtP10(), e.getFdtP10());
        assertEquals(0.5, e.getShareAtN());
        assertEquals(4, e.getPrompts());
        assertEquals(false, e.getComplete());
        assertEquals(0.0, e.getSparsity());
        assertEquals(8.0, e.getBitsPerWeight());
    }

    @Test
    void entryCarriesTheCandidatesSparsityAndBitsPerWeight() {
        DivergenceSummary summary = DivergenceSummary.of(new int[] {8}, new double[] {0.0}, 8);
        RankingEntry nm = Ranking.entry("a", "nm:2:4", 16, summary, true);
        assertEquals(0.5, nm.getSparsity());
        assertEquals(8.0, nm.getBitsPerWeight());
        RankingEntry chained = Ranking.entry("a", "wanda:0.5+int4g:128", 16, summary, true);
        assertEquals(0.5, chained.getSparsity());
        assertEquals(0.5 * (4 + 16.0 / 128), chained.getBitsPerWeight());
        assertEquals(16.0, Ranking.entry("a", "prune:0.5", 32, summary, true).getBitsPerWeight(), "float32 source");
    }

    @Test
    void anUpdatedCandidateReplacesItsEntry() {
        List<RankingEntry> ranking = Ranking.with(List.of(ranked("a", "prune:0.1", 10, 0.1),
                ranked("b", "prune:0.1", 20, 0.1)), ranked("a", "prune:0.1", 30, 0.0));
        assertEquals(List.of("a", "b"), ranking.stream().map(RankingEntry::getComponent).toList());
        assertEquals(30, ranking.get(0).getFdtm());
        assertEquals(3, Ranking.with(ranking, ranked("a", "int8_rowwise", 5, 0.0)).size());
    }
}
