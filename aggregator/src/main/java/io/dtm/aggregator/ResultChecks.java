package io.dtm.aggregator;

import io.dtm.aggregator.avro.RoundState;
import io.dtm.planner.Allocations;
import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TextSums;
import io.dtm.schemas.avro.TrialKind;

import java.util.List;

/**
 * Checks a divergence result against the sweep and the round it claims to belong to. A result that passes is one shard
 * of a trial the aggregator planned, covering exactly that shard's prompts, and its content (kind, component,
 * compression, round, on the round's schedule) is what its trial id encodes: the id is recomputed from it, so a result
 * cannot claim a planned trial's id for another component or compression. The shards of a trial therefore concatenate
 * to every prompt exactly once and can be summarised without further checks. Text metrics come exactly from the
 * shards that were sent the text, and a baseline's shards all report the same valid schedule.
 */
final class ResultChecks {
    private ResultChecks() {}

    /**
     * @param schedule the schedule the result's trial runs on top of (see {@code SweepProcessor}); null when the round
     *                 has none yet, which no result can match
     */
    static void check(DivergenceResult result, SweepRequest sweep, RoundState round, List<ScheduleEntry> schedule)
            throws RejectedRecord {
        checkScores(result, sweep);
        if (!result.getSchedule().isEmpty()) {
            throw new RejectedRecord("only a baseline reports the schedule it scored");
        }
        switch (result.getKind()) {
            case CANDIDATE -> {
                if (!round.getCandidates().contains(result.getTrialId())) {
                    throw new RejectedRecord("trial " + result.getTrialId() + " is not a candidate of round " + result.getRound());
                }
                if (result.getTrialsInRound() != round.getCandidates().size()) {
                    throw new RejectedRecord("trialsInRound " + result.getTrialsInRound() + " differs from the round's "
                            + round.getCandidates().size() + " candidates");
                }
                if (result.getComponent() == null || result.getCompression() == null) {
                    throw new RejectedRecord("a candidate result needs its component and compression");
                }
            }
            case SCHEDULE -> {
                if (!result.getTrialId().equals(round.getMeasureTrialId())) {
                    throw new RejectedRecord("trial " + result.getTrialId() + " is not the schedule measure of round "
                            + result.getRound());
                }
            }
            case BASELINE -> throw new IllegalArgumentException("a baseline is checked by checkBaseline");
        }
        String expected = schedule == null ? null : TrialPlanner.trialId(result.getSweepId(), result.getRound(),
                result.getKind(), result.getComponent(), result.getCompression(), schedule);
        if (!result.getTrialId().equals(expected)) {
            throw new RejectedRecord("trial id " + result.getTrialId() + " does not match the result's content: "
                    + result.getKind() + " " + result.getComponent() + " " + result.getCompression() + " in round "
                    + result.getRound() + (expected == null ? " has no schedule to run on yet" : " is trial " + expected));
        }
    }

    /**
     * A baseline of a target allocation: one of the two trials planned with the sweep, the global one's scored schedule
     * valid, and the same as the one its other shards in so far scored.
     *
     * @param siblings the trial's other shards stored so far
     */
    static void checkBaseline(DivergenceResult result, SweepRequest sweep, List<DivergenceResult> siblings)
            throws RejectedRecord {
        checkScores(result, sweep);
        if (!Allocations.isTarget(sweep)) {
            throw new RejectedRecord("sweep " + sweep.getSweepId() + " is greedy: it has no baselines");
        }
        if (!Allocations.BASELINES.contains(result.getComponent())
                || !result.getTrialId().equals(Allocations.baselineTrialId(sweep, result.getComponent()))) {
            throw new RejectedRecord("trial " + result.getTrialId() + " (" + result.getComponent()
                    + ") is not a baseline of sweep " + sweep.getSweepId());
        }
        List<ScheduleEntry> scored = TrialPlanner.sorted(result.getSchedule());
        String problem = result.getComponent().equals(Allocations.UNIFORM)
                ? scored.equals(Allocations.uniformSchedule(sweep)) ? null : "the uniform baseline scored another schedule"
                : Allocations.globalScheduleProblem(sweep, scored);
        if (problem != null) {
            throw new RejectedRecord(problem);
        }
        for (DivergenceResult sibling : siblings) {
            if (sibling.getShard() != result.getShard() && !TrialPlanner.sorted(sibling.getSchedule()).equals(scored)) {
                throw new RejectedRecord("shard " + result.getShard() + " of the " + result.getComponent()
                        + " baseline scored another schedule than shard " + sibling.getShard());
            }
        }
    }

    /** Prompts, tokens, shard layout and text metrics: what every result must get right, whatever its kind. */
    private static void checkScores(DivergenceResult result, SweepRequest sweep) throws RejectedRecord {
        List<Integer> fdt = result.getFdt();
        List<Double> sdt = result.getSdt();
        if (fdt.size() != sdt.size()) {
            throw new RejectedRecord("fdt has " + fdt.size() + " prompts but sdt has " + sdt.size());
        }
        if (result.getTokens() != sweep.getTokens()) {
            throw new RejectedRecord("tokens " + result.getTokens() + " differs from the sweep's " + sweep.getTokens());
        }
        for (int i = 0; i < fdt.size(); i++) {
            if (fdt.get(i) < 0 || fdt.get(i) > sweep.getTokens()) {
                throw new RejectedRecord("fdt[" + i + "] = " + fdt.get(i) + " is outside 0.." + sweep.getTokens());
            }
            if (!(sdt.get(i) >= 0 && sdt.get(i) <= 1)) {
                throw new RejectedRecord("sdt[" + i + "] = " + sdt.get(i) + " is outside 0..1");
            }
        }
        checkShardLayout(result, sweep);
        boolean textSent = result.getShard() == 0 && result.getKind() != TrialKind.CANDIDATE
                && Allocations.isTarget(sweep) && !sweep.getAllocation().getText().isEmpty();
        TextSums text = result.getText();
        if (text == null) {
            if (textSent) {
                throw new RejectedRecord("shard 0 of " + result.getKind() + " trial " + result.getTrialId()
                        + " has no text metrics, but was sent the sweep's text");
            }
            return;
        }
        if (!textSent) {
            throw new RejectedRecord("trial " + result.getTrialId() + " shard " + result.getShard()
                    + " has text metrics but was sent no text");
        }
        if (text.getPredicted() < 1 || text.getAgreed() < 0 || text.getAgreed() > text.getPredicted()
                || !(text.getNllSum() >= 0) || !Double.isFinite(text.getNllSum()) || !Double.isFinite(text.getKlSum())) {
            throw new RejectedRecord("text metrics " + text + " are not sums over at least one predicted token");
        }
    }

    private static void checkShardLayout(DivergenceResult result, SweepRequest sweep) throws RejectedRecord {
        int shardCount = TrialPlanner.shardCount(sweep);
        if (result.getShardCount() != shardCount || result.getShard() < 0 || result.getShard() >= shardCount) {
            throw new RejectedRecord("shard " + result.getShard() + "/" + result.getShardCount() + " does not fit the sweep's "
                    + shardCount + " shards");
        }
        int offset = result.getShard() * sweep.getShardSize();
        int size = Math.min(sweep.getShardSize(), sweep.getPrompts().size() - offset);
        if (result.getPromptOffset() != offset || result.getFdt().size() != size) {
            throw new RejectedRecord("shard " + result.getShard() + " must score prompts " + offset + ".." + (offset + size - 1)
                    + " but has " + result.getFdt().size() + " from offset " + result.getPromptOffset());
        }
    }
}
