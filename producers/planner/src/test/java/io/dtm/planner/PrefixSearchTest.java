package io.dtm.planner;

import io.dtm.planner.PrefixSearch.Probe;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.OptionalInt;
import java.util.Random;
import java.util.function.IntToDoubleFunction;

import static io.dtm.planner.Messages.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PrefixSearchTest {

    @Test
    void theWholeRankingIsMeasuredFirstAndSettlesItWhenItHolds() {
        PrefixSearch search = new PrefixSearch(56, 57.6);
        assertEquals(OptionalInt.of(56), search.next(List.of()));
        List<Probe> probes = List.of(new Probe(56, 60, 0.01));
        assertEquals(OptionalInt.empty(), search.next(probes));
        assertEquals(56, search.longest(probes));
    }

    @Test
    void bisectsBetweenTheLongestThatHoldsAndTheShortestThatFails() {
        PrefixSearch search = new PrefixSearch(10, 50);
        // FDTM 64 - 3·L: holds up to L = 4 (52), fails from L = 5 (49)
        List<Probe> probes = new ArrayList<>();
        List<Integer> asked = new ArrayList<>();
        for (OptionalInt next = search.next(probes); next.isPresent(); next = search.next(probes)) {
            int length = next.getAsInt();
            asked.add(length);
            probes.add(new Probe(length, 64 - 3.0 * length, 0));
        }
        assertEquals(List.of(10, 5, 2, 3, 4), asked);
        assertEquals(4, search.longest(probes));
    }

    @Test
    void noPrefixHoldingCommitsNothing() {
        PrefixSearch search = new PrefixSearch(3, 50);
        List<Probe> probes = List.of(new Probe(3, 10, 0.5), new Probe(1, 49.9, 0.1));
        assertEquals(OptionalInt.empty(), search.next(probes));
        assertEquals(0, search.longest(probes));
    }

    /** Against the brute force on non-increasing FDTM sequences: the longest holding prefix, in ≤ 1 + ⌈log2 n⌉ trials. */
    @Test
    void findsTheLongestHoldingPrefixOfAnyNonIncreasingSequence() {
        Random random = new Random(7);
        for (int run = 0; run < 500; run++) {
            int n = 1 + random.nextInt(60);
            double[] fdtm = new double[n + 1];
            fdtm[0] = 64;
            for (int l = 1; l <= n; l++) {
                fdtm[l] = fdtm[l - 1] - (random.nextInt(4) == 0 ? 0 : random.nextDouble() * 4);
            }
            double floor = 64 - random.nextDouble() * 4 * n / 2;
            int expected = 0;
            for (int l = 1; l <= n; l++) {
                if (fdtm[l] >= floor) {
                    expected = l;
                }
            }
            List<Probe> probes = run(new PrefixSearch(n, floor), l -> fdtm[l]);
            assertEquals(expected, new PrefixSearch(n, floor).longest(probes), "n = " + n + ", run " + run);
            int bound = 1 + (int) Math.ceil(Math.log(n) / Math.log(2));
            assertTrue(probes.size() <= bound, probes.size() + " probes for n = " + n);
        }
    }

    @Test
    void theAnswerDoesNotDependOnTheOrderTheMeasurementsArrivedIn() {
        PrefixSearch search = new PrefixSearch(20, 40);
        List<Probe> probes = run(search, l -> 60 - l);
        List<Probe> shuffled = new ArrayList<>(probes);
        Collections.shuffle(shuffled, new Random(3));
        assertEquals(search.longest(probes), search.longest(shuffled));
        assertEquals(20, search.longest(probes));
    }

    @Test
    void invalidSearchesAndProbesAreRejected() {
        assertMessage("at least one candidate", () -> new PrefixSearch(0, 1));
        assertMessage("finite FDTM", () -> new PrefixSearch(3, Double.NaN));
        assertMessage("outside 1..3", () -> new PrefixSearch(3, 1).next(List.of(new Probe(4, 1, 0))));
        assertMessage("outside 1..3", () -> new PrefixSearch(3, 1).next(List.of(new Probe(0, 1, 0))));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new PrefixSearch(3, 1).longest(List.of()));
        assertTrue(e.getMessage().contains("length 3"), e.getMessage());
    }

    private static List<Probe> run(PrefixSearch search, IntToDoubleFunction fdtm) {
        List<Probe> probes = new ArrayList<>();
        for (OptionalInt next = search.next(probes); next.isPresent(); next = search.next(probes)) {
            probes.add(new Probe(next.getAsInt(), fdtm.applyAsDouble(next.getAsInt()), 0));
        }
        return probes;
    }
}
