package io.dtm.planner;

import io.dtm.schemas.avro.RankingEntry;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * How many of a round's ranked candidates to commit to the schedule: the best {@code K} ({@code "K"} or
 * {@code "top:K"}), a fraction of the candidates ({@code "fraction:F"}, rounded up), every candidate whose FDTM is
 * above a floor ({@code "floor:X"}), or the longest prefix of the ranking whose whole schedule keeps an FDTM of at
 * least X ({@code "cumulative-floor:X"}, the paper's "rank once, commit in order", see {@link PrefixSearch}).
 * {@code "0"} commits nothing, so the sweep only ranks.
 *
 * <p>{@code floor:X} judges each candidate alone, measured on the old schedule; {@code cumulative-floor:X} judges the
 * schedule they make together, which is what a floor on the result means once many candidates are committed at once.
 */
public record CommitRule(Mode mode, double value) {

    public enum Mode { TOP, FRACTION, FLOOR, CUMULATIVE_FLOOR }

    /**
     * Slack for {@code ceil(F * n)}: 0.3 * 10 is 3.0000000000000004 in binary floating point and must still commit 3.
     */
    private static final double FRACTION_SLACK = 1e-9;

    private static final String EXPECTED = "expected K, top:K, fraction:F, floor:X or cumulative-floor:X";

    public CommitRule {
        if (mode == null) {
            throw new IllegalArgumentException("commit rule mode is required");
        }
        switch (mode) {
            case TOP -> {
                if (!(value >= 0 && value <= Integer.MAX_VALUE && value == Math.rint(value))) {
                    throw new IllegalArgumentException("commit count must be a whole number >= 0, got " + value);
                }
            }
            case FRACTION -> {
                if (!(value > 0 && value <= 1)) {
                    throw new IllegalArgumentException("commit fraction must be within (0, 1], got " + value);
                }
            }
            case FLOOR, CUMULATIVE_FLOOR -> {
                if (!Double.isFinite(value)) {
                    throw new IllegalArgumentException("commit floor must be a finite FDTM, got " + value);
                }
            }
        }
    }

    public static CommitRule top(int count) {
        return new CommitRule(Mode.TOP, count);
    }

    public static CommitRule fraction(double fraction) {
        return new CommitRule(Mode.FRACTION, fraction);
    }

    public static CommitRule floor(double fdtm) {
        return new CommitRule(Mode.FLOOR, fdtm);
    }

    public static CommitRule cumulativeFloor(double fdtm) {
        return new CommitRule(Mode.CUMULATIVE_FLOOR, fdtm);
    }

    /**
     * Parses {@code K}, {@code top:K}, {@code fraction:F}, {@code floor:X} or {@code cumulative-floor:X}; the message
     * names the offending text.
     */
    public static CommitRule parse(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("commit rule is missing (" + EXPECTED + ")");
        }
        String t = text.trim().toLowerCase(Locale.ROOT);
        int colon = t.indexOf(':');
        String kind = colon < 0 ? "top" : t.substring(0, colon);
        String number = colon < 0 ? t : t.substring(colon + 1).trim();
        if (!List.of("top", "fraction", "floor", "cumulative-floor").contains(kind)) {
            throw new IllegalArgumentException("unknown commit rule '" + text + "' (" + EXPECTED + ")");
        }
        try {
            return switch (kind) {
                case "top" -> top(Integer.parseInt(number));
                case "fraction" -> fraction(Double.parseDouble(number));
                case "floor" -> floor(Double.parseDouble(number));
                default -> cumulativeFloor(Double.parseDouble(number));
            };
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("invalid number '" + number + "' in commit rule '" + text + "'");
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("invalid commit rule '" + text + "': " + e.getMessage());
        }
    }

    /** Whether the rule commits a prefix of the ranking measured as a whole ({@code cumulative-floor:X}). */
    public boolean cumulative() {
        return mode == Mode.CUMULATIVE_FLOOR;
    }

    /** False only for {@code top:0}: a rule that commits nothing never stops a sweep for lack of candidates. */
    public boolean commitsAny() {
        return !(mode == Mode.TOP && value == 0);
    }

    /**
     * The candidates to commit, best first. Only complete entries count; whatever the rule, an entry with
     * {@code fdtm <= fdtmFloor} is never committed, and a component gets at most one action per round (its better one:
     * two compressions of one matrix were each measured on the old weights, not on top of each other). For
     * {@code cumulative-floor:X} these are the candidates whose prefixes {@link PrefixSearch} measures, in order.
     *
     * @param ranking   a round's ranking entries, in any order (they are ordered by {@link Ranking#BEST_FIRST} here)
     * @param fdtmFloor the sweep's FDTM floor
     */
    public List<RankingEntry> select(List<RankingEntry> ranking, double fdtmFloor) {
        List<RankingEntry> candidates = ranking.stream().filter(RankingEntry::getComplete).sorted(Ranking.BEST_FIRST).toList();
        double floor = mode == Mode.FLOOR ? Math.max(value, fdtmFloor) : fdtmFloor;
        long limit = switch (mode) {
            case TOP -> (long) value;
            case FRACTION -> (long) Math.ceil(value * candidates.size() - FRACTION_SLACK);
            case FLOOR, CUMULATIVE_FLOOR -> Long.MAX_VALUE;
        };
        List<RankingEntry> chosen = new ArrayList<>();
        Set<String> components = new HashSet<>();
        for (RankingEntry candidate : candidates) {
            if (chosen.size() >= limit || !(candidate.getFdtm() > floor)) {
                break; // best first: nothing after this one qualifies either
            }
            if (components.add(candidate.getComponent())) {
                chosen.add(candidate);
            }
        }
        return chosen;
    }

    /** Canonical text, accepted by {@link #parse}. */
    @Override
    public String toString() {
        return switch (mode) {
            case TOP -> "top:" + (long) value;
            case FRACTION -> "fraction:" + BigDecimal.valueOf(value).stripTrailingZeros().toPlainString();
            case FLOOR -> "floor:" + BigDecimal.valueOf(value).stripTrailingZeros().toPlainString();
            case CUMULATIVE_FLOOR -> "cumulative-floor:" + BigDecimal.valueOf(value).stripTrailingZeros().toPlainString();
        };
    }
}
