package io.dtm.aggregator;

import io.dtm.aggregator.avro.Probe;
import io.dtm.aggregator.avro.RoundState;
import io.dtm.aggregator.avro.SweepEvent;
import io.dtm.aggregator.avro.SweepEventKind;
import io.dtm.planner.Allocations;
import io.dtm.planner.CommitRule;
import io.dtm.planner.PrefixSearch;
import io.dtm.planner.Ranking;
import io.dtm.planner.Rounds;
import io.dtm.planner.SweepRequests;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.BaselineMeasure;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingEntry;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.TimestampedKeyValueStore;
import org.apache.kafka.streams.state.ValueAndTimestamp;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Second stage: everything of one sweep, in order, on one task. Stores each result shard under its key (a redelivery
 * overwrites), keeps each round's rolling ranking, and when a round's candidates are all complete applies the planner's
 * decision ({@link Rounds}, or {@link Allocations} for a target allocation): has the new schedule measured (under
 * {@code cumulative-floor:X}, prefix after prefix), publishes the schedule step and the next round's trials.
 * All of it happens in the task's exactly-once transaction, so a round is never decided twice nor lost between state
 * and output. What to decide is the planner's; this class only reads and writes the stores and forwards.
 *
 * <p>A target allocation's last step also waits for its two baselines, published with round 0 and scored meanwhile;
 * whichever of them and the last measure completes last publishes it.
 *
 * <p>A result can reach this stage before its sweep: the two come from different input partitions, re-keyed by
 * different tasks, and after downtime those tasks catch up at their own pace. Such a result is parked and replayed when
 * the sweep arrives; only one still unclaimed after {@code unknownSweepGrace} is dead-lettered as naming an unknown
 * sweep.
 *
 * <p>A trial shard a worker dead-letters fails its sweep, if its round still waits for it: the round can never
 * complete, and a failed sweep that says why beats one that waits forever.
 */
final class SweepProcessor implements Processor<String, SweepEvent, String, SpecificRecord> {
    private static final Logger log = LoggerFactory.getLogger(SweepProcessor.class);

    private final Deserializer<SweepRequest> sweepDeserializer;
    private final Deserializer<DivergenceResult> resultDeserializer;
    private final Deserializer<DeadLetter> deadLetterDeserializer;
    private final Deserializer<ComponentTrial> trialDeserializer;
    private final Duration unknownSweepGrace;
    private final StringSerializer keySerializer = new StringSerializer();
    private ProcessorContext<String, SpecificRecord> context;
    private KeyValueStore<String, SweepRequest> sweeps;
    private KeyValueStore<String, DivergenceResult> shards;
    private KeyValueStore<String, RoundState> rounds;
    private KeyValueStore<String, RankingUpdate> rankings;
    private KeyValueStore<String, ScheduleStep> pendingSteps;
    private KeyValueStore<String, ScheduleStep> steps;
    private TimestampedKeyValueStore<String, SweepEvent> parked;

    SweepProcessor(Deserializer<SweepRequest> sweepDeserializer, Deserializer<DivergenceResult> resultDeserializer,
                   Deserializer<DeadLetter> deadLetterDeserializer, Deserializer<ComponentTrial> trialDeserializer,
                   Duration unknownSweepGrace) {
        this.sweepDeserializer = sweepDeserializer;
        this.resultDeserializer = resultDeserializer;
        this.deadLetterDeserializer = deadLetterDeserializer;
        this.trialDeserializer = trialDeserializer;
        this.unknownSweepGrace = unknownSweepGrace;
    }

    @Override
    public void init(ProcessorContext<String, SpecificRecord> context) {
        this.context = context;
        sweeps = context.getStateStore(AggregatorTopology.SWEEP_STORE);
        shards = context.getStateStore(AggregatorTopology.SHARD_STORE);
        rounds = context.getStateStore(AggregatorTopology.ROUND_STORE);
        rankings = context.getStateStore(AggregatorTopology.RANKING_STORE);
        pendingSteps = context.getStateStore(AggregatorTopology.PENDING_STEP_STORE);
        steps = context.getStateStore(AggregatorTopology.STEP_STORE);
        parked = context.getStateStore(AggregatorTopology.PARKED_STORE);
        Duration interval = Duration.ofMillis(Math.max(100, Math.min(unknownSweepGrace.toMillis() / 2, 10_000)));
        context.schedule(interval, PunctuationType.WALL_CLOCK_TIME, this::expireParked);
    }

    @Override
    public void process(Record<String, SweepEvent> record) {
        SweepEvent event = record.value();
        switch (event.getKind()) {
            case SWEEP -> handle(record, event, () -> onSweep(record, event));
            case DIVERGENCE, TRIAL_FAILED -> onSweepEvent(record, event);
        }
    }

    /** A result or a failed trial of a sweep; a failed trial is never dead-lettered again (see below). */
    private void onSweepEvent(Record<String, SweepEvent> record, SweepEvent event) {
        if (event.getKind() == SweepEventKind.DIVERGENCE) {
            handle(record, event, () -> onResult(record, event));
            return;
        }
        try {
            onTrialFailed(record, event);
        } catch (RejectedRecord e) {
            log.warn("ignoring dead letter at {}-{}@{}: {}", event.getSourceTopic(), event.getPartition(),
                    event.getOffset(), e.getMessage());
        }
    }

    /** Processing of one event that may reject it. */
    private interface Work {
        void run() throws RejectedRecord;
    }

    private void handle(Record<String, SweepEvent> record, SweepEvent event, Work work) {
        try {
            work.run();
        } catch (RejectedRecord e) {
            deadLetter(record.timestamp(), event, e.getMessage());
        }
    }

    private void deadLetter(long timestamp, SweepEvent event, String reason) {
        context.forward(new Record<>(event.getKey(), RejectedRecord.deadLetter(event.getSourceTopic(),
                event.getPartition(), event.getOffset(), event.getKey(), bytes(event.getPayload()), reason,
                context.currentSystemTimeMs()), timestamp));
    }

    private void onSweep(Record<String, SweepEvent> record, SweepEvent event) throws RejectedRecord {
        SweepRequest sweep = RejectedRecord.decode(sweepDeserializer, event.getSourceTopic(), bytes(event.getPayload()));
        List<String> problems = new ArrayList<>(SweepRequests.problems(sweep));
        if (!sweep.getSweepId().equals(event.getKey())) {
            problems.add("key '" + event.getKey() + "' is not the sweepId");
        }
        if (!problems.isEmpty()) {
            throw new RejectedRecord("invalid sweep: " + String.join("; ", problems));
        }
        SweepRequest known = sweeps.get(sweep.getSweepId());
        if (known != null) {
            if (!known.equals(sweep)) {
                throw new RejectedRecord("sweep " + sweep.getSweepId() + " already exists with another definition;"
                        + " a changed sweep needs a new sweepId");
            }
            log.info("sweep {} published again unchanged; its state is kept", sweep.getSweepId());
            return;
        }
        sweeps.put(sweep.getSweepId(), sweep);
        // Round 0's trials were published with the sweep; planning them again here yields the same ids.
        rounds.put(Topics.roundKey(sweep.getSweepId(), 0), openRound(Rounds.first(sweep)));
        if (Allocations.isTarget(sweep)) {
            log.info("sweep {} started: target allocation to {} over {} components in {} iterations by {}",
                    sweep.getSweepId(), sweep.getTargetSparsity(), sweep.getComponents().size(),
                    sweep.getAllocation().getIterations(), sweep.getAllocation().getMetric());
        } else {
            log.info("sweep {} started: {} components, {} rounds, commit {}", sweep.getSweepId(),
                    sweep.getComponents().size(), sweep.getRounds(), sweep.getCommitRule());
        }
        replayParked(record, sweep.getSweepId());
    }

    private void replayParked(Record<String, SweepEvent> record, String sweepId) {
        List<KeyValue<String, ValueAndTimestamp<SweepEvent>>> waiting = new ArrayList<>();
        try (KeyValueIterator<String, ValueAndTimestamp<SweepEvent>> it = parked.prefixScan(sweepId + "/", keySerializer)) {
            it.forEachRemaining(waiting::add);
        }
        if (!waiting.isEmpty()) {
            log.info("sweep {}: replaying {} results that arrived before it", sweepId, waiting.size());
        }
        for (KeyValue<String, ValueAndTimestamp<SweepEvent>> entry : waiting) {
            parked.delete(entry.key);
            onSweepEvent(record, entry.value.value());
        }
    }

    private void expireParked(long now) {
        List<KeyValue<String, ValueAndTimestamp<SweepEvent>>> expired = new ArrayList<>();
        try (KeyValueIterator<String, ValueAndTimestamp<SweepEvent>> it = parked.all()) {
            it.forEachRemaining(kv -> {
                if (now - kv.value.timestamp() >= unknownSweepGrace.toMillis()) {
                    expired.add(kv);
                }
            });
        }
        for (KeyValue<String, ValueAndTimestamp<SweepEvent>> entry : expired) {
            parked.delete(entry.key);
            String sweepId = entry.key.substring(0, entry.key.indexOf('/'));
            SweepEvent event = entry.value.value();
            if (event.getKind() == SweepEventKind.TRIAL_FAILED) {
                log.warn("dropping the dead letter at {}-{}@{}: its sweep {} never arrived", event.getSourceTopic(),
                        event.getPartition(), event.getOffset(), sweepId);
            } else {
                deadLetter(now, event, "unknown sweep " + sweepId + " (no definition within "
                        + unknownSweepGrace.toSeconds() + " s)");
            }
        }
    }

    private void onResult(Record<String, SweepEvent> record, SweepEvent event) throws RejectedRecord {
        DivergenceResult result = RejectedRecord.decode(resultDeserializer, event.getSourceTopic(), bytes(event.getPayload()));
        if (!SweepRequests.isValidSweepId(result.getSweepId())) {
            throw new RejectedRecord("unknown sweep " + result.getSweepId() + " (not a valid sweep id)");
        }
        SweepRequest sweep = sweeps.get(result.getSweepId());
        if (sweep == null) {
            log.info("parking a result of unknown sweep {} until its definition arrives", result.getSweepId());
            park(result.getSweepId() + "/" + Topics.shardKey(result.getTrialId(), result.getShard()), event);
            return;
        }
        if (result.getKind() == TrialKind.BASELINE) {
            ResultChecks.checkBaseline(result, sweep, shardsOf(result.getTrialId()));
            shards.put(Topics.shardKey(result.getTrialId(), result.getShard()), result);
            if (TrialProgress.of(shardsOf(result.getTrialId())).orElseThrow().complete()) {
                onBaselineMeasured(record, sweep);
            }
            return;
        }
        String roundKey = Topics.roundKey(result.getSweepId(), result.getRound());
        RoundState round = rounds.get(roundKey);
        if (round == null) {
            throw new RejectedRecord("round " + result.getRound() + " of sweep " + result.getSweepId() + " has not started");
        }
        ResultChecks.check(result, sweep, round, scheduleOf(sweep, result.getRound(), result.getKind()));
        shards.put(Topics.shardKey(result.getTrialId(), result.getShard()), result);
        TrialProgress progress = TrialProgress.of(shardsOf(result.getTrialId())).orElseThrow();
        if (result.getKind() == TrialKind.CANDIDATE) {
            onCandidateProgress(record, sweep, result.getRound(), round, progress);
        } else if (progress.complete()) {
            onScheduleMeasured(record, sweep, result.getRound(), progress);
        }
    }

    /**
     * A worker could not score one of the sweep's trial shards, so the round it belongs to can never complete: the
     * sweep stops, failed, with the dead letter's reason in its last step, which the query API shows. A dead letter of
     * a trial whose round no longer waits for it (already decided or measured) changes nothing.
     */
    private void onTrialFailed(Record<String, SweepEvent> record, SweepEvent event) throws RejectedRecord {
        DeadLetter letter = RejectedRecord.decode(deadLetterDeserializer, event.getSourceTopic(),
                bytes(event.getPayload()));
        ComponentTrial trial = RejectedRecord.decode(trialDeserializer, Topics.TRIALS.name(),
                bytes(letter.getPayload()));
        SweepRequest sweep = sweeps.get(trial.getSweepId());
        if (sweep == null) {
            park(trial.getSweepId() + "/" + Topics.shardKey(trial.getTrialId(), trial.getShard()) + "/failed", event);
            return;
        }
        // a baseline belongs to no round: the sweep waits for it until its last step is out, in its latest round
        int roundNo = trial.getKind() == TrialKind.BASELINE ? SweepQueryService.latestRound(rounds, sweep.getSweepId())
                : trial.getRound();
        String roundKey = Topics.roundKey(sweep.getSweepId(), roundNo);
        RoundState round = rounds.get(roundKey);
        boolean awaited = round != null && switch (trial.getKind()) {
            case CANDIDATE -> !round.getDecided() && round.getCandidates().contains(trial.getTrialId());
            case SCHEDULE -> trial.getTrialId().equals(round.getMeasureTrialId()) && pendingSteps.get(roundKey) != null;
            case BASELINE -> steps.get(roundKey) == null;
        };
        if (!awaited) {
            log.info("sweep {}: trial {} was dead-lettered, but round {} does not wait for it", sweep.getSweepId(),
                    trial.getTrialId(), trial.getRound());
            return;
        }
        String what = switch (trial.getKind()) {
            case CANDIDATE -> trial.getComponent() + " " + trial.getCompression();
            case SCHEDULE -> "schedule measure";
            case BASELINE -> trial.getComponent() + " baseline";
        };
        String failure = "trial " + trial.getTrialId() + " shard " + trial.getShard() + " (" + what + ") of round "
                + trial.getRound() + " was dead-lettered by "
                + (letter.getService().isEmpty() ? "a worker" : letter.getService()) + ": " + letter.getReason();
        log.warn("sweep {} failed: {}", sweep.getSweepId(), failure);
        round.setDecided(true);
        rounds.put(roundKey, round);
        pendingSteps.delete(roundKey);
        ScheduleStep stop = Rounds.failed(sweep, roundNo, stepBefore(sweep, roundNo), failure);
        steps.put(roundKey, stop);
        context.forward(record.withKey(roundKey).withValue(stop));
    }

    private void park(String key, SweepEvent event) {
        parked.put(key, ValueAndTimestamp.make(event, context.currentSystemTimeMs()));
    }

    /**
     * The schedule a trial of round {@code roundNo} runs on top of: for candidates, the schedule the previous round
     * ended with; for the measure, the round's new schedule. Null when there is none (yet), which no result matches.
     */
    private List<ScheduleEntry> scheduleOf(SweepRequest sweep, int roundNo, TrialKind kind) {
        if (kind == TrialKind.CANDIDATE) {
            ScheduleStep before = stepBefore(sweep, roundNo);
            return roundNo > 0 && before == null ? null : Rounds.scheduleOf(before);
        }
        String roundKey = Topics.roundKey(sweep.getSweepId(), roundNo);
        ScheduleStep step = pendingSteps.get(roundKey);
        if (step == null) {
            step = steps.get(roundKey);
        }
        return step == null ? null : step.getSchedule();
    }

    /**
     * Replaces the trial's entry in the round's ranking (one trial per action, so component and compression name it),
     * publishes the ranking if anything changed, and decides the round when its last candidate completes.
     */
    private void onCandidateProgress(Record<String, SweepEvent> record, SweepRequest sweep, int roundNo, RoundState round,
                                     TrialProgress progress) {
        String roundKey = Topics.roundKey(sweep.getSweepId(), roundNo);
        RankingUpdate previous = rankings.get(roundKey);
        List<RankingEntry> entries = Ranking.with(previous == null ? List.of() : previous.getEntries(),
                progress.rankingEntry(sweep.getSourceBits()));
        int done = (int) entries.stream().filter(RankingEntry::getComplete).count();

        List<Record<String, SpecificRecord>> decision = List.of();
        if (!round.getDecided() && done == round.getCandidates().size()) {
            decision = decide(record, sweep, roundNo, round, entries);
        }
        RankingUpdate update = RankingUpdate.newBuilder()
                .setSweepId(sweep.getSweepId())
                .setRound(roundNo)
                .setTrialsTotal(round.getCandidates().size())
                .setTrialsDone(done)
                .setEntries(entries)
                .setDecided(round.getDecided())
                .setUpdatedAtMs(context.currentSystemTimeMs())
                .build();
        if (previous == null || !sameRanking(previous, update)) {
            rankings.put(roundKey, update);
            context.forward(record.withKey(roundKey).withValue(update));
        }
        decision.forEach(context::forward);
    }

    /** Applies the planner's decision on a round whose candidates are all complete. */
    private List<Record<String, SpecificRecord>> decide(Record<String, SweepEvent> record, SweepRequest sweep, int roundNo,
                                                        RoundState round, List<RankingEntry> ranking) {
        String roundKey = Topics.roundKey(sweep.getSweepId(), roundNo);
        Rounds.Decision decision = Allocations.isTarget(sweep)
                ? Allocations.decide(sweep, roundNo, stepBefore(sweep, roundNo), fdtsOf(round.getCandidates()))
                : Rounds.decide(sweep, roundNo, stepBefore(sweep, roundNo), ranking);
        round.setDecided(true);
        log.info("sweep {} round {} decided: committing {}", sweep.getSweepId(), roundNo,
                decision.step().getCommitted().stream().map(e -> e.getComponent() + "=" + e.getCompression()).toList());
        if (decision.stops()) {
            rounds.put(roundKey, round);
            steps.put(roundKey, decision.step());
            return List.of(record.withKey(roundKey).withValue(decision.step()));
        }
        round.setMeasureTrialId(decision.measure().get(0).getTrialId());
        rounds.put(roundKey, round);
        pendingSteps.put(roundKey, decision.step());
        return trialRecords(record, decision.measure());
    }

    /**
     * The round's schedule is measured: publish its step once, then the next round's trials unless the sweep is done.
     * Under {@code cumulative-floor:X} the measure was a prefix of the ranking, which may call for another one first;
     * a target allocation's last step waits for its baselines.
     */
    private void onScheduleMeasured(Record<String, SweepEvent> record, SweepRequest sweep, int roundNo,
                                    TrialProgress measured) {
        String roundKey = Topics.roundKey(sweep.getSweepId(), roundNo);
        ScheduleStep decided = pendingSteps.get(roundKey);
        if (decided == null) {
            return; // a redelivered shard of a measure whose step is already published
        }
        Rounds.Measured next;
        if (Allocations.isTarget(sweep)) {
            next = Allocations.measured(sweep, decided, measured.summary(), measured.fdt(), measured.text());
            if (next.step().getLast()) {
                Optional<List<BaselineMeasure>> baselines = baselinesOf(sweep);
                if (baselines.isEmpty()) {
                    log.info("sweep {} round {} measured; its last step waits for the baselines", sweep.getSweepId(),
                            roundNo);
                    return;
                }
                next = new Rounds.Measured(Allocations.withBaselines(next.step(), baselines.get()), List.of());
            }
        } else if (CommitRule.parse(sweep.getCommitRule()).cumulative()) {
            RoundState round = rounds.get(roundKey);
            round.getProbes().add(new Probe(decided.getCommitted().size(), measured.summary().fdtm(),
                    measured.summary().sdtm()));
            Rounds.Outcome outcome = Rounds.probed(sweep, roundNo, stepBefore(sweep, roundNo),
                    rankings.get(roundKey).getEntries(), round.getProbes().stream()
                            .map(p -> new PrefixSearch.Probe(p.getLength(), p.getFdtm(), p.getSdtm())).toList());
            if (outcome instanceof Rounds.Decision probe) {
                log.info("sweep {} round {}: the first {} of the ranking scored FDTM {}; measuring the first {}",
                        sweep.getSweepId(), roundNo, decided.getCommitted().size(), measured.summary().fdtm(),
                        probe.step().getCommitted().size());
                round.setMeasureTrialId(probe.measure().get(0).getTrialId());
                rounds.put(roundKey, round);
                pendingSteps.put(roundKey, probe.step());
                trialRecords(record, probe.measure()).forEach(context::forward);
                return;
            }
            rounds.put(roundKey, round);
            next = (Rounds.Measured) outcome;
        } else {
            next = Rounds.measured(sweep, decided, measured.summary());
        }
        ScheduleStep step = next.step();
        pendingSteps.delete(roundKey);
        steps.put(roundKey, step);
        context.forward(record.withKey(roundKey).withValue(step));
        log.info("sweep {} round {} schedule measured: FDTM {}, overall sparsity {}{}", sweep.getSweepId(), roundNo,
                step.getFdtm(), step.getOverallSparsity(), step.getLast() ? "; stopping: " + step.getStopReason() : "");
        if (!step.getLast()) {
            rounds.put(Topics.roundKey(sweep.getSweepId(), roundNo + 1), openRound(next.nextRound()));
            trialRecords(record, next.nextRound()).forEach(context::forward);
        }
    }

    /**
     * A target allocation's baseline is complete: if the last iteration is measured and waits only for the baselines,
     * its step goes out now.
     */
    private void onBaselineMeasured(Record<String, SweepEvent> record, SweepRequest sweep) {
        int latest = SweepQueryService.latestRound(rounds, sweep.getSweepId());
        RoundState round = rounds.get(Topics.roundKey(sweep.getSweepId(), latest));
        if (round == null || round.getMeasureTrialId() == null) {
            return;
        }
        TrialProgress.of(shardsOf(round.getMeasureTrialId())).filter(TrialProgress::complete)
                .ifPresent(measured -> onScheduleMeasured(record, sweep, latest, measured));
    }

    /** Both baselines, measured; empty while a shard of either is missing. */
    private Optional<List<BaselineMeasure>> baselinesOf(SweepRequest sweep) {
        List<BaselineMeasure> measured = new ArrayList<>();
        for (String name : Allocations.BASELINES) {
            Optional<TrialProgress> progress = TrialProgress.of(shardsOf(Allocations.baselineTrialId(sweep, name)))
                    .filter(TrialProgress::complete);
            if (progress.isEmpty()) {
                return Optional.empty();
            }
            TrialProgress p = progress.get();
            measured.add(Allocations.baseline(sweep, name, p.schedule(), p.summary(), p.fdt(), p.text()));
        }
        return Optional.of(measured);
    }

    /** The per-prompt FDTs of each of the trials, all shards in prompt order (each must be complete). */
    private Map<String, int[]> fdtsOf(List<String> trialIds) {
        Map<String, int[]> fdts = new HashMap<>();
        for (String id : trialIds) {
            fdts.put(id, TrialProgress.of(shardsOf(id)).orElseThrow().fdt());
        }
        return fdts;
    }

    /** The step the previous round ended with; null in round 0, or while that step is not published. */
    private ScheduleStep stepBefore(SweepRequest sweep, int roundNo) {
        return roundNo == 0 ? null : steps.get(Topics.roundKey(sweep.getSweepId(), roundNo - 1));
    }

    private List<DivergenceResult> shardsOf(String trialId) {
        List<DivergenceResult> found = new ArrayList<>();
        try (KeyValueIterator<String, DivergenceResult> it = shards.prefixScan(trialId + "/", keySerializer)) {
            it.forEachRemaining(kv -> found.add(kv.value));
        }
        return found;
    }

    /** A round whose candidates are the {@code CANDIDATE} trials of {@code trials}. */
    private static RoundState openRound(List<ComponentTrial> trials) {
        return new RoundState(trials.stream().filter(t -> t.getKind() == TrialKind.CANDIDATE)
                .map(ComponentTrial::getTrialId).distinct().toList(), false, null, new ArrayList<>());
    }

    private static List<Record<String, SpecificRecord>> trialRecords(Record<String, SweepEvent> cause,
                                                                     List<ComponentTrial> trials) {
        return trials.stream()
                .map(t -> cause.<String>withKey(Topics.shardKey(t.getTrialId(), t.getShard())).<SpecificRecord>withValue(t))
                .toList();
    }

    private static boolean sameRanking(RankingUpdate a, RankingUpdate b) {
        return RankingUpdate.newBuilder(b).setUpdatedAtMs(a.getUpdatedAtMs()).build().equals(a);
    }

    static byte[] bytes(ByteBuffer buffer) {
        ByteBuffer copy = buffer.duplicate();
        byte[] bytes = new byte[copy.remaining()];
        copy.get(bytes);
        return bytes;
    }
}
