package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code dtm demo} on the tiny model: the target allocation's report and file, and the greedy file as it was. */
class DemoCommandTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> METRICS = List.of("overall_sparsity", "fdtm", "sdtm", "perplexity", "kl",
            "top1_agreement", "schedule");

    @TempDir
    Path dir;

    private EngineCommandsTest.Run demo(String... options) throws Exception {
        Path prompts = dir.resolve("prompts.txt");
        Files.write(prompts, E2e.prompts(E2e.PROMPTS));
        List<String> args = new ArrayList<>(List.of("demo", "--model", E2e.tinyModel().toString(), "--prompts",
                prompts.toString(), "--tokens", "16", "--components", E2e.COMPONENTS, "--workers", "1", "--device", "cpu"));
        args.addAll(List.of(options));
        return EngineCommandsTest.dtm(args.toArray(String[]::new));
    }

    @Test
    void aTargetAllocationPrintsItsIterationsBaselinesAndWhereTheSparsityWentAndWritesItsFile() throws Exception {
        Path out = dir.resolve("target.json");
        EngineCommandsTest.Run run = demo("--target-sparsity", "0.5", "--iterations", "2", "--out", out.toString());
        assertEquals(0, run.exit(), run.out() + run.err());
        String printed = run.out();
        for (String line : List.of("schedule       target  overall  threshold   FDTM    SDTM  perplexity        KL   top-1",
                "iteration 1    25.00%", "iteration 2    50.00%", "uniform        50.00%", "global         50.00%",
                "where the sparsity went", "  layer       allocated    uniform     global",
                "  kind        allocated    uniform     global", "stopped: target_sparsity")) {
            assertTrue(printed.contains(line), line + " missing from:\n" + printed);
        }

        JsonNode file = JSON.readTree(out.toFile());
        assertEquals(2, file.path("iterations").size());
        JsonNode first = file.path("iterations").path(0);
        assertEquals(1, first.path("iteration").intValue());
        assertEquals(0.25, first.path("target").doubleValue());
        assertTrue(first.path("threshold").isNumber());
        for (String key : METRICS) {
            assertTrue(first.has(key), key);
            assertTrue(file.path("baselines").path("uniform").has(key), "uniform " + key);
            assertTrue(file.path("baselines").path("global").has(key), "global " + key);
        }
        assertTrue(first.path("perplexity").doubleValue() > 1, "the demo measures its own text");
        Iterator<String> components = first.path("schedule").fieldNames();
        assertTrue(components.hasNext());
        assertTrue(first.path("schedule").path(components.next()).textValue().startsWith("prune:"));
        assertTrue(file.path("iterations").path(1).path("overall_sparsity").doubleValue() >= 0.5);
        assertEquals(file.path("iterations").path(1).path("schedule"), file.path("schedule").path("components"));
        assertEquals(2, file.path("sparsity").path("by_layer").size(), "the tiny model's two layers");
        assertEquals(0.5, file.path("sparsity").path("by_kind").path("q_proj").path("uniform").doubleValue(), 1e-12);

        // the file is a schedule `dtm apply` takes: "give me the checkpoint"
        EngineCommandsTest.Run apply = EngineCommandsTest.dtm("apply", "--model", E2e.tinyModel().toString(),
                "--schedule", out.toString(), "--out", dir.resolve("checkpoint").toString());
        assertEquals(0, apply.exit(), apply.err());
        assertTrue(apply.lastLine().startsWith("apply: 6 matrices compressed"), apply.lastLine());
    }

    @Test
    void aTargetAllocationOverKindsGivesEachComponentTheKindThatReachesFurthest() throws Exception {
        Path out = dir.resolve("kinds.json");
        EngineCommandsTest.Run run = demo("--target-sparsity", "0.5", "--iterations", "2", "--kinds",
                "prune,wanda,nm:2:4", "--out", out.toString());
        assertEquals(0, run.exit(), run.out() + run.err());
        // 6 components, each: prune and wanda at 2 amounts, nm:2:4, the whole matrix zero; and the 2 baselines
        assertTrue(run.out().contains(": 38 trials in 38 shards for iteration 1 and the 2 baselines"), run.out());
        assertTrue(run.out().contains("components by the kind of compression they were given: {prune="), run.out());
        JsonNode file = JSON.readTree(out.toFile());
        assertEquals(2, file.path("iterations").size());
        assertTrue(file.path("schedule").path("overall_sparsity").doubleValue() >= 0.5);
        file.path("schedule").path("components").forEach(c -> assertTrue(c.textValue().matches(
                "(prune|wanda):[0-9.]+|nm:2:4"), c.textValue()));
        assertEquals(0.5, file.path("baselines").path("uniform").path("overall_sparsity").doubleValue(), 1e-12);
    }

    @Test
    void theGreedyDemoWritesTheFileTheReadmeShows() throws Exception {
        Path out = dir.resolve("greedy.json");
        EngineCommandsTest.Run run = demo("--rounds", "1", "--out", out.toString());
        assertEquals(0, run.exit(), run.out() + run.err());
        JsonNode file = JSON.readTree(out.toFile());
        assertEquals(List.of("sweepId", "model", "tokens", "prompts", "kinds", "not_planned", "rounds", "comparison",
                "schedule"), keys(file));
        assertEquals(List.of("components", "steps", "overall_sparsity", "bits_per_weight", "fdtm", "stop_reason"),
                keys(file.path("schedule")));
        assertEquals(List.of("round", "committed", "schedule", "fdtm", "sdtm", "overallSparsity", "int8Share",
                "bitsPerWeight", "last", "stopReason"), keys(file.path("schedule").path("steps").path(0)));
        assertTrue(run.out().contains("round 0 ranking (best first):"), run.out());
    }

    private static List<String> keys(JsonNode node) {
        List<String> keys = new ArrayList<>();
        node.fieldNames().forEachRemaining(keys::add);
        return keys;
    }
}
