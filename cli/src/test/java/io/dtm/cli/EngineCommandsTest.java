package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The engine commands as a user runs them: exit codes, last lines and error messages. */
class EngineCommandsTest {

    private static final Path SHARED = Path.of(System.getProperty("dtm.shared", "../../shared"));
    private static final Path TINY = SHARED.resolve("models/tiny-random-llama");
    private static final Path TINY_GOLDEN = SHARED.resolve("golden/tiny-random-llama.shared.json");

    record Run(int exit, String out, String err) {
        String lastLine() {
            List<String> lines = out.lines().toList();
            return lines.get(lines.size() - 1);
        }
    }

    static Run dtm(String... args) {
        PrintStream originalOut = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            var cli = Dtm.commandLine();
            cli.setErr(new PrintWriter(err, true));
            int exit = cli.execute(args);
            return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString());
        } finally {
            System.setOut(originalOut);
        }
    }

    @Test
    void goldenReproducesTheSharedFileAndWritesTheSameFormat(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("out.json");
        Run run = dtm("golden", "--model", TINY.toString(), "--golden", TINY_GOLDEN.toString(), "--out", out.toString(),
                "--device", "cpu");
        assertEquals(0, run.exit(), run.err());
        assertEquals("golden: 32 prompts, 26 cases, 0 mismatches, 0 near-ties", run.lastLine());
        JsonNode written = new ObjectMapper().readTree(out.toFile());
        JsonNode expected = new ObjectMapper().readTree(TINY_GOLDEN.toFile());
        assertEquals(expected.get("base_continuations"), written.get("base_continuations"));
        assertEquals(expected.get("cases").get(5).get("fdt"), written.get("cases").get(5).get("fdt"));
    }

    @Test
    void aWrongExpectationIsAMismatchAndFailsTheCommand(@TempDir Path dir) throws Exception {
        ObjectNode golden = (ObjectNode) new ObjectMapper().readTree(TINY_GOLDEN.toFile());
        ArrayNode fdt = (ArrayNode) golden.get("cases").get(2).get("fdt");
        fdt.set(1, fdt.get(1).asInt() == 0 ? 5 : 0);
        Path tampered = dir.resolve("tampered.json");
        new ObjectMapper().writeValue(tampered.toFile(), golden);
        Run run = dtm("golden", "--model", TINY.toString(), "--golden", tampered.toString(), "--device", "cpu");
        assertEquals(1, run.exit());
        assertEquals("golden: 32 prompts, 26 cases, 1 mismatches, 0 near-ties", run.lastLine());
        assertTrue(run.out().contains("mismatch: case 2"), run.out());
    }

    @Test
    void aGoldenFileWithoutExpectationsIsComputedNotCompared(@TempDir Path dir) throws Exception {
        ObjectMapper json = new ObjectMapper();
        JsonNode full = json.readTree(TINY_GOLDEN.toFile());
        ObjectNode bare = json.createObjectNode();
        bare.set("prompts", full.get("prompts"));
        bare.set("prompt_ids", full.get("prompt_ids"));
        ArrayNode cases = bare.putArray("cases");
        for (JsonNode c : full.get("cases")) {
            ObjectNode oc = cases.addObject();
            oc.set("kind", c.get("kind"));
            if (c.has("sparsity")) {
                oc.set("sparsity", c.get("sparsity"));
            }
            oc.set("components", c.get("components"));
        }
        Path in = dir.resolve("bare.json");
        Path out = dir.resolve("computed.json");
        json.writeValue(in.toFile(), bare);
        Run run = dtm("golden", "--model", TINY.toString(), "--golden", in.toString(), "--out", out.toString(), "--device", "cpu");
        assertEquals(0, run.exit(), run.err());
        assertEquals("golden: 32 prompts, 26 cases, 0 mismatches, 0 near-ties", run.lastLine());
        JsonNode computed = json.readTree(out.toFile());
        assertEquals(64, computed.get("n_generated").asInt());
        assertEquals(full.get("cases").get(0).get("fdt"), computed.get("cases").get(0).get("fdt"));
    }

    @Test
    void evalPrintsTheAggregatesOfOneTrial(@TempDir Path dir) throws Exception {
        Path prompts = dir.resolve("prompts.txt");
        Files.write(prompts, List.of("The old farmer walked slowly along", "", "When the committee met on Tuesday morning, the chairman"));
        Run run = dtm("eval", "--model", TINY.toString(), "--prompts", prompts.toString(), "--component",
                "model.layers.1.mlp.down_proj", "--int8", "--tokens", "16", "--device", "cpu");
        assertEquals(0, run.exit(), run.err());
        assertTrue(run.out().contains("model.layers.1.mlp.down_proj int8_rowwise over 2 prompts x 16 tokens"), run.out());
        assertTrue(run.out().lines().anyMatch(l -> l.matches("FDTM \\d+\\.\\d\\d \\(median .*, p10 .*, .*% of prompts at N=16\\)")), run.out());
        assertTrue(run.lastLine().matches("SDTM 0\\.\\d{4}|SDTM 1\\.0000"), run.lastLine());
    }

    @Test
    void badInputNamesTheProblem(@TempDir Path dir) throws Exception {
        Path prompts = dir.resolve("prompts.txt");
        Files.write(prompts, List.of("A prompt"));
        Run unknown = dtm("eval", "--model", TINY.toString(), "--prompts", prompts.toString(), "--component",
                "model.layers.7.mlp.up_proj", "--prune", "0.5", "--device", "cpu");
        assertEquals(2, unknown.exit());
        assertTrue(unknown.err().contains("unknown component 'model.layers.7.mlp.up_proj'"), unknown.err());

        Run sparsity = dtm("eval", "--model", TINY.toString(), "--prompts", prompts.toString(), "--component",
                "model.layers.0.mlp.up_proj", "--prune", "1.5", "--device", "cpu");
        assertEquals(2, sparsity.exit());
        assertTrue(sparsity.err().contains("invalid sparsity 1.5"), sparsity.err());

        Run missing = dtm("eval", "--model", dir.resolve("nope").toString(), "--prompts", prompts.toString(),
                "--component", "model.layers.0.mlp.up_proj", "--int8", "--device", "cpu");
        assertEquals(2, missing.exit());
        assertTrue(missing.err().contains("nope"), missing.err());
    }

    @Test
    void benchAgreesAcrossTheThreeMethodsAndPrintsTheRatioLine(@TempDir Path dir) throws Exception {
        Path prompts = dir.resolve("prompts.txt");
        Files.write(prompts, Files.readAllLines(SHARED.resolve("data/heldout-paragraphs.txt")).stream()
                .limit(6).map(l -> l.length() > 80 ? l.substring(0, 80) : l).toList());
        Run run = dtm("bench", "--model", TINY.toString(), "--prompts", prompts.toString(), "--tokens", "16", "--device", "cpu");
        assertEquals(0, run.exit(), run.out() + run.err());
        assertTrue(run.out().contains("prompts disagreeing with fast: full 0, naive 0 (of 84 trial-prompts)"), run.out());
        assertTrue(run.lastLine().matches("bench: naive=\\d+\\.\\d\\d full=\\d+\\.\\d\\d fast=\\d+\\.\\d\\d "
                + "speedup_vs_full=\\d+\\.\\d\\d speedup_vs_naive=\\d+\\.\\d\\d"), run.lastLine());
    }
}
