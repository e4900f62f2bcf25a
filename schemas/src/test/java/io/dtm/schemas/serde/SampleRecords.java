package io.dtm.schemas.serde;

import io.dtm.schemas.avro.AllocationRequest;
import io.dtm.schemas.avro.AllocationStep;
import io.dtm.schemas.avro.BaseContinuation;
import io.dtm.schemas.avro.BaselineMeasure;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.DeadLetter;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingEntry;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TextSums;
import io.dtm.schemas.avro.TrialKind;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import org.apache.avro.specific.SpecificRecord;

/** One instance of every generated record, with values away from the schema defaults so a lost field shows. */
final class SampleRecords {
    private SampleRecords() {}

    static final ScheduleEntry ENTRY = ScheduleEntry.newBuilder()
            .setComponent("layers.0.mlp.up_proj").setCompression("prune:0.3").build();

    static final DivergenceResult DIVERGENCE = DivergenceResult.newBuilder()
            .setTrialId("t-1f3a").setShard(2).setShardCount(3).setSweepId("sweep-7").setRound(4)
            .setKind(TrialKind.SCHEDULE).setComponent("layers.1.attn.q_proj").setCompression("int8_rowwise")
            .setTrialsInRound(12).setTokens(32).setPromptOffset(64).setFdt(List.of(32, 5, 0))
            .setSdt(List.of(0.0, 3.5, 12.25)).setWorkerId("worker-a").setElapsedMs(1234L).setText(textSums())
            .setSchedule(List.of(ENTRY)).build();

    static Map<Class<? extends SpecificRecord>, SpecificRecord> all() {
        return Map.ofEntries(
                Map.entry(ScheduleEntry.class, ENTRY),
                Map.entry(ComponentInfo.class, ComponentInfo.newBuilder().setName("layers.0.mlp.down_proj")
                        .setParams(65536L).build()),
                Map.entry(BaseContinuation.class, BaseContinuation.newBuilder().setPromptSetId("ps-9").setModel("brown-llama-8m")
                        .setShard(1).setTokens(8).setPromptIds(List.of(List.of(1, 15, 7), List.of(1, 3)))
                        .setContinuations(List.of(List.of(4, 4, 9), List.of(2))).setReferences(List.of(List.of(5)))
                        .build()),
                Map.entry(ComponentTrial.class, ComponentTrial.newBuilder().setTrialId("t-2").setShard(1).setShardCount(2)
                        .setSweepId("sweep-7").setRound(3).setKind(TrialKind.SCHEDULE).setModel("m")
                        .setPromptSetId("ps-9").setTokens(16).setComponent("c").setCompression("prune:0.5")
                        .setSchedule(List.of(ENTRY)).setPromptOffset(32).setPrompts(List.of("Once", "upon"))
                        .setTrialsInRound(5).setText(List.of("One document.", "Another.")).setTextWindow(96).build()),
                Map.entry(DeadLetter.class, DeadLetter.newBuilder().setSourceTopic("dtm.trials").setPartition(3).setOffset(99L)
                        .setKey("t-2/1").setPayload(ByteBuffer.wrap(new byte[] {0x7b, 0x00, (byte) 0xff}))
                        .setReason("not in Confluent wire format").setService("worker").setFailedAtMs(1700L).build()),
                Map.entry(DivergenceResult.class, DIVERGENCE),
                Map.entry(RankingUpdate.class, RankingUpdate.newBuilder().setSweepId("sweep-7").setRound(2).setTrialsTotal(8)
                        .setTrialsDone(3).setEntries(List.of(rankingEntry())).setDecided(true).setUpdatedAtMs(42L)
                        .build()),
                Map.entry(RankingEntry.class, rankingEntry()),
                Map.entry(ScheduleStep.class, ScheduleStep.newBuilder().setSweepId("sweep-7").setRound(2)
                        .setCommitted(List.of(ENTRY)).setSchedule(List.of(ENTRY, ENTRY)).setFdtm(17.5).setSdtm(2.25)
                        .setOverallSparsity(0.125).setInt8Share(0.5).setLast(true).setStopReason("floor")
                        .setAllocation(allocationStep()).setText(textSums()).setBaselines(List.of(baseline()))
                        .build()),
                Map.entry(SweepRequest.class, SweepRequest.newBuilder().setSweepId("sweep-7").setModel("m").setPromptSetId("ps")
                        .setPrompts(List.of("a", "b")).setTokens(24).setComponentRegex("mlp")
                        .setComponents(List.of(ComponentInfo.newBuilder().setName("c").setParams(10L).build()))
                        .setPruneStep(0.2).setInt8(true).setRounds(3).setCommitRule("top:2").setFdtmFloor(1.5)
                        .setTargetSparsity(0.6).setShardSize(16).setCreatedAtMs(5L).setAllocation(allocation())
                        .build()),
                Map.entry(TextSums.class, textSums()),
                Map.entry(AllocationRequest.class, allocation()),
                Map.entry(AllocationStep.class, allocationStep()),
                Map.entry(BaselineMeasure.class, baseline()));
    }

    private static TextSums textSums() {
        return TextSums.newBuilder().setPredicted(120L).setNllSum(410.5).setKlSum(3.25).setAgreed(97L).build();
    }

    private static AllocationRequest allocation() {
        return AllocationRequest.newBuilder().setIterations(3).setMetric("fdt-q:0.25")
                .setText(List.of("A paragraph.", "Another one.")).setTextWindow(64).build();
    }

    private static AllocationStep allocationStep() {
        return AllocationStep.newBuilder().setIterationTarget(0.25).setThreshold(41.5).setMetric(40.25).build();
    }

    private static BaselineMeasure baseline() {
        return BaselineMeasure.newBuilder().setName("global").setSchedule(List.of(ENTRY)).setOverallSparsity(0.5)
                .setFdtm(12.5).setSdtm(0.25).setMetric(11.0).setText(textSums()).build();
    }

    private static RankingEntry rankingEntry() {
        return RankingEntry.newBuilder().setComponent("c").setCompression("prune:0.1").setFdtm(30.5).setSdtm(1.5)
                .setFdtMedian(31.0).setFdtP10(12.0).setShareAtN(0.75).setPrompts(20).setComplete(false).build();
    }
}
