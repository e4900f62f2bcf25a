package io.dtm.planner;

import io.dtm.schemas.avro.AllocationRequest;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.RankingEntry;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.SweepRequest;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/** Small, valid sweeps and ranking entries for the tests (the publisher's too). */
public final class TestSweeps {
    private TestSweeps() {}

    public static List<String> prompts(int count) {
        return IntStream.range(0, count).mapToObj(i -> "prompt " + i).toList();
    }

    /** Components a, b, c with 100, 300, 600 parameters; 10 prompts in shards of 4; prune steps of 0.25; int8 off. */
    public static SweepRequest.Builder sweep() {
        List<String> prompts = prompts(10);
        return SweepRequest.newBuilder()
                .setSweepId("sweep-1")
                .setModel("brown-llama-8m")
                .setPromptSetId(TrialPlanner.promptSetId("brown-llama-8m", 8, prompts))
                .setPrompts(new ArrayList<>(prompts))
                .setTokens(8)
                .setComponents(new ArrayList<>(List.of(component("a", 100), component("b", 300), component("c", 600))))
                .setPruneStep(0.25)
                .setInt8(false)
                .setRounds(3)
                .setCommitRule("1")
                .setShardSize(4);
    }

    /**
     * {@link #sweep()} as a target allocation: T = 0.5 in K = 2 iterations by FDTM, with a two-document text in
     * windows of 16 tokens.
     */
    public static SweepRequest.Builder target() {
        return sweep().setTargetSparsity(0.5)
                .setAllocation(new AllocationRequest(2, "fdtm", new ArrayList<>(List.of("a first document",
                        "and a second one")), 16));
    }

    /** A component of {@code params} parameters in rows of 10 input columns. */
    public static ComponentInfo component(String name, long params) {
        return component(name, params, 10);
    }

    public static ComponentInfo component(String name, long params, int columns) {
        return new ComponentInfo(name, params, columns);
    }

    public static ScheduleEntry entry(String component, String compression) {
        return new ScheduleEntry(component, compression);
    }

    public static RankingEntry ranked(String component, String compression, double fdtm, double sdtm) {
        return RankingEntry.newBuilder().setComponent(component).setCompression(compression).setFdtm(fdtm).setSdtm(sdtm)
                .setPrompts(10).setComplete(true).build();
    }
}
