package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.planner.Footprint;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.SweepRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --kinds} as a user meets it: {@code dtm demo --kinds ... --chain} on a real broker with the tiny model ranks
 * every kind that fits a component with the engine's own numbers, names a kind that does not fit and never plans it,
 * names each component's best kind at 50% sparsity, and chains the committed action in the next round; options that
 * conflict with {@code --kinds} are refused before anything starts.
 */
class KindsCommandsTest {

    private static final String KINDS = "prune,nm:2:4,wanda,int4g:32";

    @Test
    void aDemoOverKindsRanksComparesAndChainsThem(@TempDir Path dir) throws Exception {
        List<String> prompts = E2e.prompts(E2e.PROMPTS);
        Path promptFile = Files.write(dir.resolve("prompts.txt"), prompts);
        Path out = dir.resolve("demo.json");
        // one shard holds every prompt, so Wanda's input norms are the whole set's, as in the reference below
        EngineCommandsTest.Run run = EngineCommandsTest.dtm("demo", "--model", E2e.tinyModel().toString(),
                "--prompts", promptFile.toString(), "--tokens", String.valueOf(E2e.TOKENS), "--components",
                E2e.COMPONENTS, "--kinds", KINDS, "--chain", "--prune-step", "0.5", "--rounds", "2", "--commit", "1",
                "--shard-size", String.valueOf(E2e.PROMPTS), "--workers", "1", "--device", "cpu",
                "--timeout-minutes", "5", "--out", out.toString());
        assertEquals(0, run.exit(), run.err() + run.out());
        for (int layer = 0; layer < 2; layer++) {
            assertTrue(run.out().contains("never planned: model.layers." + layer + ".mlp.down_proj int4g:32: 176 input"
                    + " columns are not a multiple of 32"), run.out());
        }
        assertTrue(run.out().contains("which kind keeps FDTM highest, per component"), run.out());

        JsonNode demo = new ObjectMapper().readTree(out.toFile());
        assertEquals(List.of("prune", "nm:2:4", "wanda", "int4g:32"), texts(demo.get("kinds")));
        JsonNode round0 = demo.get("rounds").get(0).get("ranking");
        assertEquals(6 * 4 - 2, round0.size(), "every component under every kind that fits it");
        Set<String> seen = new HashSet<>();
        try (E2e.Reference reference = new E2e.Reference(prompts)) {
            for (JsonNode e : round0) {
                String component = e.get("component").asText();
                String compression = e.get("compression").asText();
                assertTrue(seen.add(component + " " + compression));
                DivergenceSummary expected = reference.candidate(component, compression);
                assertEquals(expected.fdtm(), e.get("fdtm").asDouble(), component + " " + compression);
                assertEquals(expected.sdtm(), e.get("sdtm").asDouble(), component + " " + compression);
                Footprint footprint = Footprint.of(CompressionSpec.parse(compression), 32);
                assertEquals(footprint.sparsity(), e.get("sparsity").asDouble());
                assertEquals(footprint.bitsPerWeight(), e.get("bits_per_weight").asDouble(), "float32 source");
            }
        }

        JsonNode half = demo.get("comparison").get("levels").get(0);
        assertEquals(0.5, half.get("sparsity").asDouble());
        List<String> columns = new ArrayList<>();
        half.get("columns").forEach(c -> columns.add(c.get("compression").asText()));
        assertEquals(List.of("prune:0.5", "nm:2:4", "wanda:0.5"), columns);
        assertEquals(6, half.get("rows").size());
        for (JsonNode row : half.get("rows")) {
            String component = row.get("component").asText();
            double best = -1;
            for (JsonNode e : round0) {
                if (e.get("component").asText().equals(component) && e.get("sparsity").asDouble() == 0.5) {
                    best = Math.max(best, e.get("fdtm").asDouble());
                }
            }
            assertEquals(best, row.get("fdtm").get(row.get("best").asText()).asDouble(), component);
        }
        assertEquals(List.of("int4g:32"), texts(demo.get("comparison").get("unmatched")));

        // round 1: the committed component goes on under its kind and may now take the other side of a chain
        JsonNode committed = demo.get("schedule").get("steps").get(0).get("committed").get(0);
        String component = committed.get("component").asText();
        String compression = committed.get("compression").asText();
        Set<String> next = new HashSet<>();
        demo.get("rounds").get(1).get("ranking").forEach(e -> {
            if (e.get("component").asText().equals(component)) {
                next.add(e.get("compression").asText());
            }
        });
        if (CompressionSpec.parse(compression).steps().get(0).valueBits() > 0) {
            assertTrue(next.containsAll(List.of("prune:0.5+" + compression, "nm:2:4+" + compression,
                    "wanda:0.5+" + compression)), next.toString());
        } else if (!component.endsWith("down_proj")) {
            assertTrue(next.contains(compression + "+int4g:32"), next.toString());
        }
        SweepRequest sweep = SweepRequest.newBuilder(E2e.sweep("unused")).setSourceBits(32).build();
        List<ScheduleEntry> schedule = new ArrayList<>();
        demo.get("schedule").get("components").fields().forEachRemaining(
                f -> schedule.add(new ScheduleEntry(f.getKey(), f.getValue().asText())));
        assertEquals(Footprint.of(sweep, schedule).bitsPerWeight(),
                demo.get("schedule").get("bits_per_weight").asDouble(), 1e-12);
        assertTrue(run.out().contains("bits/weight"), run.out());
    }

    @Test
    void optionsThatConflictWithKindsAreRefusedNamingThem() {
        String[] start = {"sweep", "start", "--bootstrap-servers", "127.0.0.1:1", "--registry-url",
                "http://127.0.0.1:1", "--model", E2e.tinyModel().toString()};
        EngineCommandsTest.Run int8 = EngineCommandsTest.dtm(with(start, "--kinds", "prune,int8_rowwise", "--int8"));
        assertEquals(2, int8.exit());
        assertTrue(int8.err().contains("int8 and kinds conflict (--int8, --kinds)"), int8.err());
        EngineCommandsTest.Run noStep = EngineCommandsTest.dtm(with(start, "--kinds", "wanda", "--prune-step", "0"));
        assertTrue(noStep.err().contains("pruneStep (--prune-step), which is 0"), noStep.err());
        EngineCommandsTest.Run fitsNone = EngineCommandsTest.dtm(with(start, "--kinds", "int4g:128"));
        assertTrue(fitsNone.err().contains("no kind fits any component (model.layers.0.self_attn.q_proj int4g:128: 64"
                + " input columns are not a multiple of 128;"), fitsNone.err());
        EngineCommandsTest.Run unknown = EngineCommandsTest.dtm(with(start, "--kinds", "prune:0.5,fp8"));
        assertTrue(unknown.err().contains("prune takes its sparsity from the prune step")
                && unknown.err().contains("unknown kind 'fp8'"), unknown.err());
    }

    @Test
    void applyWritesCompressedTensorsAndNamesWhatItStoredDense(@TempDir Path dir) throws Exception {
        Path prompts = Files.write(dir.resolve("prompts.txt"), E2e.prompts(4));
        Path schedule = Files.writeString(dir.resolve("schedule.json"), "{\"components\": {"
                + "\"model.layers.0.self_attn.q_proj\": \"int4g:16\", \"model.layers.0.self_attn.k_proj\": \"int4g:16\","
                + " \"model.layers.0.self_attn.v_proj\": \"int4g:16\", \"model.layers.1.mlp.up_proj\": \"wanda:0.5+int4g:16\"}}");
        Path out = dir.resolve("out");
        EngineCommandsTest.Run run = EngineCommandsTest.dtm("apply", "--model", E2e.tinyModel().toString(),
                "--schedule", schedule.toString(), "--out", out.toString(), "--format", "compressed-tensors",
                "--prompts", prompts.toString(), "--tokens", "8");
        assertEquals(0, run.exit(), run.err());
        assertTrue(run.out().contains("model.layers.1.mlp.up_proj wanda:0.5+int4g:16: written dense; vLLM runs"
                + " [gate_proj, up_proj] as one matrix"), run.out());
        assertTrue(run.lastLine().startsWith("apply: 4 matrices compressed") && run.lastLine().contains("compressed-tensors"),
                run.lastLine());
        JsonNode groups = new ObjectMapper().readTree(out.resolve("config.json").toFile())
                .get("quantization_config").get("config_groups");
        assertEquals(List.of("model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.q_proj",
                "model.layers.0.self_attn.v_proj"), texts(groups.get("group_0").get("targets")));
        EngineCommandsTest.Run bogus = EngineCommandsTest.dtm("apply", "--model", E2e.tinyModel().toString(),
                "--schedule", schedule.toString(), "--out", dir.resolve("other").toString(), "--format", "gguf");
        assertEquals(2, bogus.exit());
        assertTrue(bogus.err().contains("--format must be dequantized or compressed-tensors, got 'gguf'"), bogus.err());
    }

    private static String[] with(String[] args, String... more) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of(more));
        return all.toArray(String[]::new);
    }

    private static List<String> texts(JsonNode array) {
        List<String> texts = new ArrayList<>();
        array.forEach(n -> texts.add(n.asText()));
        return texts;
    }
}
