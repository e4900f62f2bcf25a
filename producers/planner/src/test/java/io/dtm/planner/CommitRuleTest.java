package io.dtm.planner;

import io.dtm.schemas.avro.RankingEntry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.stream.IntStream;

import static io.dtm.planner.TestSweeps.ranked;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CommitRuleTest {

    @ParameterizedTest
    @CsvSource({"3, top:3", "top:2, top:2", " TOP:0 , top:0", "fraction:0.25, fraction:0.25", "fraction:1, fraction:1",
            "floor:40, floor:40", "floor:-1.5, floor:-1.5", "cumulative-floor:57.60, cumulative-floor:57.6",
            "Cumulative-Floor: 3, cumulative-floor:3"})
    void parsesEveryFormToItsCanonicalText(String text, String canonical) {
        CommitRule rule = CommitRule.parse(text);
        assertEquals(canonical, rule.toString());
        assertEquals(rule, CommitRule.parse(rule.toString()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "-1", "top:-2", "top:1.5", "fraction:0", "fraction:1.2", "fraction:x", "floor:NaN",
            "best:3", "3:top", "cumulative-floor:x", "cumulative:3"})
    void rejectsInvalidRulesNamingTheText(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CommitRule.parse(text));
        assertTrue(e.getMessage().contains("commit rule"), e.getMessage());
    }

    @Test
    void topKCommitsTheBestK() {
        List<RankingEntry> committed = CommitRule.parse("2").select(List.of(ranked("a", "prune:0.1", 5, 0),
                ranked("b", "prune:0.1", 7, 0), ranked("c", "prune:0.1", 6, 0)), 0);
        assertEquals(List.of("b", "c"), components(committed));
    }

    @Test
    void tiesAreBrokenBySdtmThenName() {
        List<RankingEntry> committed = CommitRule.top(2).select(List.of(ranked("c", "prune:0.1", 6, 0.1),
                ranked("b", "prune:0.1", 6, 0.2), ranked("a", "prune:0.1", 6, 0.1)), 0);
        assertEquals(List.of("a", "c"), components(committed));
    }

    @Test
    void zeroCommitsNothing() {
        CommitRule rule = CommitRule.parse("0");
        assertFalse(rule.commitsAny());
        assertEquals(List.of(), rule.select(List.of(ranked("a", "prune:0.1", 8, 0)), 0));
    }

    @Test
    void neverCommitsAtOrBelowTheSweepFloor() {
        List<RankingEntry> ranking = List.of(ranked("a", "prune:0.1", 8, 0), ranked("b", "prune:0.1", 4, 0),
                ranked("c", "prune:0.1", 3, 0));
        assertEquals(List.of("a"), components(CommitRule.top(3).select(ranking, 4)));
        assertEquals(List.of(), components(CommitRule.top(3).select(ranking, 8)));
    }

    @Test
    void floorRuleCommitsEverythingAboveTheHigherOfBothFloors() {
        List<RankingEntry> ranking = List.of(ranked("a", "prune:0.1", 8, 0), ranked("b", "prune:0.1", 6, 0),
                ranked("c", "prune:0.1", 5, 0), ranked("d", "prune:0.1", 2, 0));
        assertEquals(List.of("a", "b", "c"), components(CommitRule.parse("floor:4").select(ranking, 0)));
        assertEquals(List.of("a", "b"), components(CommitRule.parse("floor:4").select(ranking, 5)));
        assertEquals(List.of("a"), components(CommitRule.parse("floor:6").select(ranking, 0)));
    }

    @Test
    void cumulativeFloorOffersEveryCandidateAboveTheSweepFloorInRankedOrder() {
        List<RankingEntry> ranking = List.of(ranked("a", "int8_rowwise", 50, 0), ranked("b", "int8_rowwise", 63, 0),
                ranked("c", "int8_rowwise", 40, 0), ranked("a", "prune:0.1", 55, 0));
        CommitRule rule = CommitRule.parse("cumulative-floor:57.6");
        assertTrue(rule.cumulative());
        assertTrue(rule.commitsAny());
        assertFalse(CommitRule.parse("floor:57.6").cumulative());
        // the floor judges the schedule they make together (PrefixSearch), not each candidate
        assertEquals(List.of("b", "a", "c"), components(rule.select(ranking, 0)));
        assertEquals("prune:0.1", rule.select(ranking, 0).get(1).getCompression());
        assertEquals(List.of("b", "a"), components(rule.select(ranking, 45)));
    }

    @ParameterizedTest
    @CsvSource({"0.3, 10, 3", "0.25, 3, 1", "0.5, 5, 3", "1, 7, 7", "0.01, 7, 1", "0.1, 10, 1", "0.7, 10, 7"})
    void fractionRoundsUpWithoutFloatingPointSurprises(double fraction, int candidates, int expected) {
        List<RankingEntry> ranking = IntStream.range(0, candidates)
                .mapToObj(i -> ranked("c" + (char) ('a' + i), "prune:0.1", 100 - i, 0)).toList();
        assertEquals(expected, CommitRule.fraction(fraction).select(ranking, 0).size());
    }

    @Test
    void oneActionPerComponentKeepsTheBetter() {
        List<RankingEntry> ranking = List.of(ranked("a", "prune:0.1", 8, 0.0), ranked("a", "int8_rowwise", 8, 0.1),
                ranked("b", "int8_rowwise", 7, 0), ranked("b", "prune:0.1", 6, 0));
        List<RankingEntry> committed = CommitRule.top(3).select(ranking, 0);
        assertEquals(List.of("a prune:0.1", "b int8_rowwise"),
                committed.stream().map(e -> e.getComponent() + " " + e.getCompression()).toList());
    }

    @Test
    void incompleteEntriesAreNotCandidates() {
        RankingEntry partial = ranked("a", "prune:0.1", 8, 0);
        partial.setComplete(false);
        List<RankingEntry> committed = CommitRule.top(1).select(List.of(partial, ranked("b", "prune:0.1", 5, 0)), 0);
        assertEquals(List.of("b"), components(committed));
        assertEquals(1, CommitRule.fraction(0.5).select(List.of(partial, ranked("b", "prune:0.1", 5, 0)), 0).size());
    }

    private static List<String> components(List<RankingEntry> entries) {
        return entries.stream().map(RankingEntry::getComponent).toList();
    }
}
