package io.dtm.planner;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * The paper's "rank once, commit in order" ({@code cumulative-floor:X}): the longest prefix of a round's ranked
 * candidates whose whole schedule, measured as one, keeps an FDTM of at least {@code floor}.
 *
 * <p>Measuring every prefix would cost as many schedule trials as there are candidates. This search assumes instead
 * that a schedule's FDTM does not rise as more of the ranking is committed on top of it (each candidate is a further
 * compression), and bisects on the prefix length: first the whole ranking (on a forgiving model that one trial
 * settles it), then the midpoints of {@code [longest known to hold, shortest known to fail]}, about
 * {@code 1 + log2(n)} trials one after the other. The empty prefix is the round's starting schedule, which is taken to
 * hold. Where the assumption fails (a longer prefix scoring higher) the answer is still a prefix that was measured to
 * hold, just not necessarily the longest.
 *
 * <p>Pure: the next length to measure and the answer follow from the measurements so far alone, whatever order they
 * arrived in, so a replay after a restart asks for the same trials.
 *
 * @param candidates how many ranked candidates there are, {@code n ≥ 1}
 * @param floor      the FDTM the committed schedule must keep
 */
public record PrefixSearch(int candidates, double floor) {

    /** A measured prefix: the first {@code length} candidates on top of the round's schedule, and its scores. */
    public record Probe(int length, double fdtm, double sdtm) {}

    public PrefixSearch {
        if (candidates < 1) {
            throw new IllegalArgumentException("a prefix search needs at least one candidate, got " + candidates);
        }
        if (!Double.isFinite(floor)) {
            throw new IllegalArgumentException("the floor must be a finite FDTM, got " + floor);
        }
    }

    /** The prefix length to measure next, or empty once {@link #longest} is decided. */
    public OptionalInt next(List<Probe> probes) {
        return walk(probes).next();
    }

    /**
     * The longest prefix known to hold, {@code 0} when none does.
     *
     * @throws IllegalStateException while a probe is still missing ({@link #next} is not empty)
     */
    public int longest(List<Probe> probes) {
        Outcome outcome = walk(probes);
        if (outcome.next().isPresent()) {
            throw new IllegalStateException("the search still needs the prefix of length " + outcome.next().getAsInt());
        }
        return outcome.longest();
    }

    /** Either the length to measure next, or (when that is empty) the answer. */
    private record Outcome(OptionalInt next, int longest) {}

    private Outcome walk(List<Probe> probes) {
        Map<Integer, Probe> byLength = new HashMap<>();
        for (Probe p : probes) {
            if (p.length() < 1 || p.length() > candidates) {
                throw new IllegalArgumentException("probe of length " + p.length() + " is outside 1.." + candidates);
            }
            byLength.put(p.length(), p);
        }
        int lo = 0;
        int hi = candidates + 1;
        int probe = candidates;
        while (hi - lo > 1) {
            Probe p = byLength.get(probe);
            if (p == null) {
                return new Outcome(OptionalInt.of(probe), -1);
            }
            if (p.fdtm() >= floor) {
                lo = probe;
            } else {
                hi = probe;
            }
            probe = (lo + hi) >>> 1;
        }
        return new Outcome(OptionalInt.empty(), lo);
    }
}
