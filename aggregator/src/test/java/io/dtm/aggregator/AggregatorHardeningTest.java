package io.dtm.aggregator;

import io.dtm.planner.StopReason;
import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;
import org.apache.kafka.streams.state.HostInfo;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;

import static io.dtm.aggregator.AggregatorDriver.result;
import static io.dtm.aggregator.AggregatorDriver.sweep;
import static io.dtm.aggregator.AggregatorTopologyTest.shards;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 8, items 2 and 6, on the topology: a result whose content contradicts its trial id is dead-lettered, not
 * ranked; a trial a worker dead-letters fails its sweep, and the query API says why.
 */
class AggregatorHardeningTest {
    private final AggregatorDriver agg = new AggregatorDriver();

    @AfterEach
    void close() {
        agg.close();
    }

    @Test
    void resultsThatContradictTheirTrialIdAreDeadLetteredAndNeverCommitted() {
        SweepRequest sweep = sweep().build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        ComponentTrial a = shards(round0, "a").get(0);

        DivergenceResult notInSweep = result(a, 8, 8);
        notInSweep.setComponent("model.layers.9.mlp.up_proj"); // a component the sweep does not have
        DivergenceResult otherComponent = result(a, 8, 8);
        otherComponent.setComponent("b");
        DivergenceResult otherCompression = result(a, 8, 8);
        otherCompression.setCompression("prune:1.0");
        DivergenceResult asMeasure = result(a, 8, 8);
        asMeasure.setKind(TrialKind.SCHEDULE);
        List<DivergenceResult> forged = List.of(notInSweep, otherComponent, otherCompression, asMeasure);
        forged.forEach(r -> agg.results.pipeInput(Topics.shardKey(r.getTrialId(), r.getShard()), r));

        List<String> reasons = agg.deadLetters.readValuesToList().stream().map(DeadLetter::getReason).toList();
        assertEquals(forged.size(), reasons.size(), reasons.toString());
        for (String reason : reasons.subList(0, 3)) {
            assertTrue(reason.contains("trial id " + a.getTrialId() + " does not match the result's content"), reason);
        }
        assertTrue(reasons.get(3).contains("not the schedule measure"), reasons.get(3));
        assertTrue(agg.rankings.isEmpty(), "nothing forged is ranked");

        // the genuine results decide the round with the sweep's own candidates
        agg.reportTrial(shards(round0, "a"), 8);
        agg.reportTrial(shards(round0, "b"), 4);
        RankingUpdate decided = agg.rankings.readValuesToList().stream().reduce((x, y) -> y).orElseThrow();
        assertTrue(decided.getDecided());
        assertEquals(List.of("a", "b"), decided.getEntries().stream().map(e -> e.getComponent()).toList());
        List<ComponentTrial> measure = agg.trials.readValuesToList();
        assertEquals("a", measure.get(0).getSchedule().get(0).getComponent());
    }

    @Test
    void aTrialAWorkerDeadLettersFailsItsSweepAndTheApiSaysWhy() {
        SweepRequest sweep = sweep().build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        ComponentTrial bad = shards(round0, "b").get(1);
        agg.reportTrial(shards(round0, "a"), 8);
        agg.report(shards(round0, "b").get(0), 4, 4);
        agg.rankings.readValuesToList();

        agg.deadLetterInput.pipeInput(Topics.shardKey(bad.getTrialId(), bad.getShard()), agg.workerLetter(bad,
                "IllegalArgumentException: unknown component 'b' for model tiny"));

        ScheduleStep failed = agg.steps.readValue();
        assertTrue(failed.getLast());
        assertEquals(StopReason.FAILED.code(), failed.getStopReason());
        assertTrue(failed.getFailure().contains("trial " + bad.getTrialId() + " shard 1 (b prune:0.5) of round 0"),
                failed.getFailure());
        assertTrue(failed.getFailure().endsWith("dead-lettered by gpu-worker: IllegalArgumentException: unknown"
                + " component 'b' for model tiny"), failed.getFailure());
        assertEquals(List.of(), failed.getCommitted());
        assertEquals(AggregatorDriver.TOKENS, failed.getFdtm(), "the schedule (none) keeps its measurement");

        HostInfo self = new HostInfo("127.0.0.1", 1);
        ScheduleView view = new SweepQueryService(self, id -> Optional.of(self), agg.driver::getKeyValueStore,
                HttpClient.newHttpClient()).schedule("s1").orElseThrow();
        assertTrue(view.finished());
        assertEquals("failed", view.stopReason());
        assertEquals(failed.getFailure(), view.failure());

        // a late result of the failed round decides nothing, and nothing is dead-lettered along the way
        agg.report(bad, 4, 4);
        assertTrue(agg.trials.isEmpty(), "no measure is planned for a failed round");
        assertTrue(agg.steps.isEmpty());
        assertTrue(agg.deadLetters.isEmpty());
    }

    @Test
    void deadLettersOfDecidedRoundsOrOfNoTrialChangeNothing() {
        SweepRequest sweep = sweep().setRounds(1).build();
        agg.start(sweep);
        List<ComponentTrial> round0 = TrialPlanner.candidates(sweep, 0, List.of());
        agg.reportTrial(shards(round0, "a"), 8);
        agg.reportTrial(shards(round0, "b"), 4);
        List<ComponentTrial> measure = agg.trials.readValuesToList();

        // a redelivered candidate of the decided round fails at a worker: the round no longer waits for it
        agg.deadLetterInput.pipeInput("late", agg.workerLetter(round0.get(0), "transient trouble"));
        // the aggregator's own dead letter of a result, and bytes that are no dead letter at all
        agg.deadLetterInput.pipeInput("own", DeadLetter.newBuilder().setSourceTopic(Topics.DIVERGENCES.name())
                .setReason("fdt out of range").setService("aggregator").build());
        agg.rawDeadLetterInput.pipeInput("garbage", "not avro".getBytes(StandardCharsets.UTF_8));
        assertTrue(agg.steps.isEmpty());
        assertTrue(agg.deadLetters.isEmpty(), "a dead letter is never dead-lettered again");

        agg.reportTrial(measure, 7);
        ScheduleStep last = agg.steps.readValue();
        assertEquals(StopReason.ROUNDS.code(), last.getStopReason());
        assertEquals("", last.getFailure());
    }

    @Test
    void aDeadLetterArrivingBeforeItsSweepFailsItWhenItArrives() {
        SweepRequest sweep = sweep().build();
        ComponentTrial bad = TrialPlanner.candidates(sweep, 0, List.of()).get(0);
        agg.deadLetterInput.pipeInput("early", agg.workerLetter(bad, "cannot load model 'tiny'"));
        assertTrue(agg.steps.isEmpty());

        agg.start(sweep);
        ScheduleStep failed = agg.steps.readValue();
        assertEquals(StopReason.FAILED.code(), failed.getStopReason());
        assertTrue(failed.getFailure().endsWith("cannot load model 'tiny'"), failed.getFailure());
    }
}
