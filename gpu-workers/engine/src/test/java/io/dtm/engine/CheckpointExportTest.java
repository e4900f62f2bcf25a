package io.dtm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import io.dtm.schemas.CompressionSpec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code dtm apply}'s checkpoints, reloaded with the engine's own loader: every scheduled matrix is the spec's
 * compression of the source weight (the plain-Java reference), every other tensor the source's, the layout the source's.
 */
class CheckpointExportTest {

    private static final EngineOptions CPU = new EngineOptions("cpu", "float32", 64, EngineOptions.DEFAULT_CACHE_BUDGET);
    private static DivergenceEngine brown;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() throws IOException {
        brown = DivergenceEngine.load(TestData.brownDir(), CPU);
    }

    @AfterAll
    static void close() {
        brown.close();
    }

    private static Trial schedule() {
        return Trial.none()
                .plus("model.layers.0.self_attn.q_proj", CompressionSpec.prune(0.5))
                .plus("model.layers.3.mlp.down_proj", CompressionSpec.int8())
                .plus("model.layers.7.self_attn.v_proj", CompressionSpec.prune(0.9));
    }

    /** Every tensor of a checkpoint by name, widened to float32. */
    private static Map<String, float[]> tensors(Path dir) throws IOException {
        Map<String, float[]> out = new TreeMap<>();
        ModelFiles files = ModelFiles.resolve(dir, null);
        for (Path shard : files.shards().keySet()) {
            try (SafeTensors st = new SafeTensors(shard)) {
                for (String name : st.entries().keySet()) {
                    out.put(name, TestData.floats(st, name));
                }
            }
        }
        return out;
    }

    @Test
    void float32ExportHoldsTheExactCompressionsAndTheSourceEverywhereElse() throws IOException {
        Path out = tmp.resolve("f32");
        CheckpointExport.Summary summary = CheckpointExport.write(brown, schedule(), out, "float32", null);
        assertEquals(3, summary.compressed());
        Map<String, float[]> source = tensors(TestData.brownDir());
        Map<String, float[]> written = tensors(out);
        assertEquals(source.keySet(), written.keySet());
        LlamaConfig c = brown.config();
        for (Map.Entry<String, float[]> e : source.entrySet()) {
            String component = e.getKey().replace(".weight", "");
            CompressionSpec spec = schedule().changes().get(component);
            float[] expected = spec == null ? e.getValue()
                    : ReferenceCompression.apply(spec, e.getValue(), (int) c.componentShape(local(component))[0],
                            (int) c.componentShape(local(component))[1]);
            assertArrayEquals(expected, written.get(e.getKey()), e.getKey());
        }
        // sharded like the source: the same files, each with the same tensors, and an index to match
        for (Path shard : ModelFiles.resolve(TestData.brownDir(), null).shards().keySet()) {
            try (SafeTensors a = new SafeTensors(shard); SafeTensors b = new SafeTensors(out.resolve(shard.getFileName()))) {
                assertEquals(a.entries().keySet().stream().toList(), b.entries().keySet().stream().toList());
                b.entries().values().forEach(entry -> assertEquals("F32", entry.dtype()));
            }
        }
        JsonNode index = TestData.readJson(out.resolve("model.safetensors.index.json"));
        assertEquals(TestData.readJson(TestData.brownDir().resolve("model.safetensors.index.json")).path("weight_map"),
                index.path("weight_map"));
        assertEquals(4L * source.values().stream().mapToLong(v -> v.length).sum(), index.path("metadata").path("total_size").asLong());
        assertEquals("float32", TestData.readJson(out.resolve("config.json")).path("dtype").asText());
        assertArrayEquals(Files.readAllBytes(TestData.brownDir().resolve("tokenizer.json")),
                Files.readAllBytes(out.resolve("tokenizer.json")));
    }

    @Test
    void defaultExportKeepsTheSourceDtypeAndItsBytes() throws IOException {
        Path out = tmp.resolve("bf16");
        CheckpointExport.Summary summary = CheckpointExport.write(brown, schedule(), out, null, null);
        assertEquals("bfloat16", summary.dtype());
        ModelFiles source = ModelFiles.resolve(TestData.brownDir(), null);
        for (Path shard : source.shards().keySet()) {
            try (SafeTensors a = new SafeTensors(shard); SafeTensors b = new SafeTensors(out.resolve(shard.getFileName()))) {
                for (String name : a.entries().keySet()) {
                    String component = name.replace(".weight", "");
                    float[] got = TestData.floats(b, name);
                    if (schedule().changes().containsKey(component)) {
                        // the float32 compression rounded to bfloat16, as the README says
                        float[] exact = brown.compressedWeights(schedule(), null).get(component);
                        for (int i = 0; i < exact.length; i++) {
                            assertEquals(Float.intBitsToFloat(CheckpointExport.floatToBfloat16(exact[i]) << 16), got[i]);
                        }
                    } else {
                        assertArrayEquals(TestData.floats(a, name), got, name + " untouched");
                    }
                }
            }
        }
        // and the engine loads it and scores the schedule's compressions as already applied: a reloaded model with the
        // int8 matrix is the schedule's model up to bf16 rounding of the dequantized values
        try (DivergenceEngine reloaded = DivergenceEngine.load(out, CPU)) {
            assertEquals(brown.config(), reloaded.config());
            float[] pruned = reloaded.baseWeight("model.layers.7.self_attn.v_proj");
            long zeros = java.util.stream.IntStream.range(0, pruned.length).filter(i -> pruned[i] == 0f).count();
            assertEquals(Math.rint(0.9 * pruned.length), zeros, 1.0, "prune:0.9 stays 90% zeros in bfloat16");
        }
    }

    @Test
    void anOutputDirectoryThatIsNotEmptyIsRefusedAndAnUnknownComponentWritesNothing() throws IOException {
        Path used = Files.createDirectories(tmp.resolve("used"));
        Files.writeString(used.resolve("keep.txt"), "mine");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CheckpointExport.write(brown, schedule(), used, null, null));
        assertTrue(e.getMessage().contains("not empty"), e.getMessage());
        Path fresh = tmp.resolve("fresh");
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> CheckpointExport.write(
                brown, Trial.of("model.layers.9.mlp.up_proj", CompressionSpec.prune(0.5)), fresh, null, null));
        assertTrue(unknown.getMessage().contains("model.layers.9.mlp.up_proj"), unknown.getMessage());
        assertFalse(Files.exists(fresh), "nothing written");
        assertThrows(IllegalArgumentException.class, () -> CheckpointExport.write(brown, schedule(), fresh, "int8", null));
    }

    @Test
    void halfAndBfloat16RoundingMatchTorch() {
        Random random = new Random(21);
        float[] values = new float[20000];
        for (int i = 0; i < values.length; i++) {
            int kind = i % 4;
            values[i] = switch (kind) {
                case 0 -> (float) random.nextGaussian();
                case 1 -> (float) (random.nextGaussian() * 1e-6); // float16 subnormals
                case 2 -> (float) (random.nextGaussian() * 7e4);  // past float16's range
                default -> Float.intBitsToFloat(random.nextInt());
            };
        }
        try (NDManager m = NDManager.newBaseManager(ai.djl.Device.cpu(), "PyTorch")) {
            NDArray f32 = m.create(values);
            byte[] torchHalf = f32.toType(DataType.FLOAT16, false).toByteArray();
            ByteBuffer mine = ByteBuffer.wrap(CheckpointExport.encode(values, "F16")).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer theirs = ByteBuffer.wrap(torchHalf).order(ByteOrder.nativeOrder());
            for (int i = 0; i < values.length; i++) {
                short a = mine.getShort(2 * i);
                short b = theirs.getShort(2 * i);
                if (Float.isNaN(values[i])) {
                    assertTrue(Float.isNaN(SafeTensors.halfToFloat(a)), "NaN stays NaN");
                } else {
                    assertEquals(b, a, "float16 of " + values[i]);
                }
            }
        }
        // every half round-trips through float32
        for (int h = 0; h < 0x10000; h++) {
            float f = SafeTensors.halfToFloat((short) h);
            if (!Float.isNaN(f)) {
                assertEquals((short) h, CheckpointExport.floatToHalf(f));
            }
        }
        // bfloat16: round to nearest, ties to even on the dropped half
        assertEquals((short) 0x3f80, CheckpointExport.floatToBfloat16(Float.intBitsToFloat(0x3f807fff)));
        assertEquals((short) 0x3f80, CheckpointExport.floatToBfloat16(Float.intBitsToFloat(0x3f808000)));
        assertEquals((short) 0x3f82, CheckpointExport.floatToBfloat16(Float.intBitsToFloat(0x3f818000)));
        assertEquals((short) 0x3f81, CheckpointExport.floatToBfloat16(Float.intBitsToFloat(0x3f808001)));
    }

    private static String local(String component) {
        return component.substring(component.indexOf('.', "model.layers.".length()) + 1);
    }
}
