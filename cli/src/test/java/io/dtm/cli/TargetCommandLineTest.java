package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.local.EmbeddedCluster;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.AllocationRequest;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.serde.AvroSerdes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A target allocation on the command line: {@code sweep start} publishes one, and each bad input (issue 10, item 8) is
 * refused with an error naming it before anything is published or written (the pipeline's side of bad input:
 * {@code TargetAllocationTopologyTest}).
 */
class TargetCommandLineTest {

    @TempDir
    Path dir;

    /** {@code sweep start} against a cluster that is never reached: validation comes first. */
    private static EngineCommandsTest.Run sweepStart(String... options) {
        List<String> args = new ArrayList<>(List.of("sweep", "start", "--bootstrap-servers", "127.0.0.1:1",
                "--registry-url", "http://127.0.0.1:1", "--model", E2e.tinyModel().toString()));
        args.addAll(List.of(options));
        return EngineCommandsTest.dtm(args.toArray(String[]::new));
    }

    private static void assertRefused(EngineCommandsTest.Run run, String expected) {
        assertEquals(2, run.exit(), run.out() + run.err());
        assertTrue(run.err().contains(expected), run.err());
    }

    @Test
    void sweepStartPublishesTheFirstIterationAndBothBaselinesWithTheText() throws Exception {
        Path text = Files.writeString(dir.resolve("text.txt"), "A first document.\n\nA second one, a little longer.\n");
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null)) {
            EngineCommandsTest.Run run = EngineCommandsTest.dtm("sweep", "start", "--bootstrap-servers",
                    cluster.bootstrapServers(), "--registry-url", cluster.registryUrl(), "--model",
                    E2e.tinyModel().toString(), "--components", E2e.COMPONENTS, "--tokens", "8", "--sweep-id",
                    "target-cli", "--target-sparsity", "0.3", "--iterations", "3", "--metric", "fdt-q:0.25", "--text",
                    text.toString(), "--window", "64");
            assertEquals(0, run.exit(), run.err());
            assertEquals("sweep target-cli: 20 trials in 40 shards published for iteration 1 of 3 and the 2 baselines",
                    run.lastLine());
            // the transaction is committed, but its markers reach the partition a moment later: until then a
            // read_committed reader's end offset stops short of the sweep
            SweepRequest published = E2e.awaitValue("the published sweep", Duration.ofSeconds(30),
                    () -> E2e.readAll(cluster.bootstrapServers(), Topics.SWEEPS.name(),
                            AvroSerdes.deserializer(SweepRequest.class, E2e.registry(cluster))).stream().findFirst()
                            .map(Map.Entry::getValue));
            assertEquals(0.3, published.getTargetSparsity());
            assertEquals(new AllocationRequest(3, "fdt-q:0.25", List.of("A first document.",
                    "A second one, a little longer."), 64), published.getAllocation());
        }
    }

    @Test
    void aTargetOutsideZeroToOneIsNamed() {
        for (String t : List.of("0", "1.5", "-0.2")) {
            assertRefused(sweepStart("--iterations", "2", "--target-sparsity", t),
                    "targetSparsity must be within (0, 1) for a target allocation, got " + Double.parseDouble(t));
        }
        assertRefused(sweepStart("--iterations", "2"), "targetSparsity must be within (0, 1) for a target allocation,"
                + " got 1.0");
    }

    @Test
    void fewerThanOneIterationIsNamed() {
        assertRefused(sweepStart("--iterations", "0", "--target-sparsity", "0.5"),
                "allocation.iterations must be >= 1, got 0");
    }

    @Test
    void anUnknownMetricIsNamed() {
        assertRefused(sweepStart("--iterations", "2", "--target-sparsity", "0.5", "--metric", "median"),
                "unknown allocation metric 'median' (expected fdtm or fdt-q:Q)");
        assertRefused(sweepStart("--iterations", "2", "--target-sparsity", "0.5", "--metric", "fdt-q:2"),
                "quantile must be within [0, 1], got 2.0");
    }

    @Test
    void aTextWithNoLineToScoreIsNamed() throws Exception {
        Path blank = Files.writeString(dir.resolve("blank.txt"), "\n   \n\t\n");
        assertRefused(sweepStart("--iterations", "2", "--target-sparsity", "0.5", "--text", blank.toString()),
                "text file " + blank + " has no line long enough to score");
        assertRefused(sweepStart("--iterations", "2", "--target-sparsity", "0.5", "--text",
                dir.resolve("missing.txt").toString()), "text file " + dir.resolve("missing.txt") + " does not exist");
        Path text = Files.writeString(dir.resolve("text.txt"), "A line to score.\n");
        assertRefused(sweepStart("--iterations", "2", "--target-sparsity", "0.5", "--text", text.toString(),
                "--window", "1"), "allocation.textWindow must be >= 2");
    }

    @Test
    void targetOptionsWithoutIterationsAreRefused() throws Exception {
        Path text = Files.writeString(dir.resolve("text.txt"), "A line to score.\n");
        assertRefused(sweepStart("--text", text.toString()), "--metric, --text and --window belong to a target"
                + " allocation: give --iterations K");
    }

    @Test
    void aScheduleNamingAnUnknownComponentOrABadCompressionIsNamed() throws Exception {
        Path unknown = Files.writeString(dir.resolve("unknown.json"),
                "{\"components\": {\"model.layers.9.mlp.up_proj\": \"prune:0.5\"}}");
        assertRefused(EngineCommandsTest.dtm("apply", "--model", E2e.tinyModel().toString(), "--schedule",
                unknown.toString(), "--out", dir.resolve("out-1").toString()),
                "unknown component 'model.layers.9.mlp.up_proj'");
        Path bad = Files.writeString(dir.resolve("bad.json"),
                "{\"schedule\": {\"components\": {\"model.layers.0.mlp.up_proj\": \"prune:1.5\"}}}");
        assertRefused(EngineCommandsTest.dtm("apply", "--model", E2e.tinyModel().toString(), "--schedule",
                bad.toString(), "--out", dir.resolve("out-2").toString()),
                "schedule file " + bad + ", model.layers.0.mlp.up_proj: invalid sparsity 1.5");
        Path prompts = Files.writeString(dir.resolve("prompts.txt"), "A prompt\n");
        Path kind = Files.writeString(dir.resolve("kind.json"),
                "{\"components\": {\"model.layers.0.mlp.up_proj\": \"halve\"}}");
        assertRefused(EngineCommandsTest.dtm("eval", "--model", E2e.tinyModel().toString(), "--prompts",
                prompts.toString(), "--schedule", kind.toString(), "--tokens", "4", "--device", "cpu"),
                "unknown compression 'halve'");
        assertTrue(Files.notExists(dir.resolve("out-1")) && Files.notExists(dir.resolve("out-2")),
                "nothing was written");
    }

    @Test
    void anOutDirectoryThatExistsAndIsNotEmptyIsNamed() throws Exception {
        Path schedule = Files.writeString(dir.resolve("schedule.json"),
                "{\"components\": {\"model.layers.0.mlp.up_proj\": \"prune:0.5\"}}");
        Path out = Files.createDirectories(dir.resolve("out"));
        Files.writeString(out.resolve("keep.txt"), "not ours");
        assertRefused(EngineCommandsTest.dtm("apply", "--model", E2e.tinyModel().toString(), "--schedule",
                schedule.toString(), "--out", out.toString()), "output directory " + out + " exists and is not empty");
        assertEquals(List.of(out.resolve("keep.txt")), Files.list(out).toList());
    }
}
