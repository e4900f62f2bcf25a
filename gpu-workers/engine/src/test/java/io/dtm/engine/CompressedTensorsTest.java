package io.dtm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.dtm.schemas.CompressionSpec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code dtm apply --format compressed-tensors} against the format's published description (neuralmagic/
 * compressed-tensors 0.12: {@code pack_to_int32}, {@code unpack_from_int32}, {@code pack_bitmasks},
 * {@code dequantize}, {@code ModelCompressor.update_config}), decoded here the way that code decodes it.
 */
class CompressedTensorsTest {

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

    @Test
    void packingIsPackToInt32() {
        // pack_to_int32's own docstring: num_bits=8, [1, 2] -> [129, 130, 0, 0] -> 33409
        assertArrayEquals(new int[] {33409}, CompressedTensors.pack(new int[] {1, 2}, 1, 2, 8));
        // int4: q + 8 in nibble k of the word, the first column lowest
        assertArrayEquals(new int[] {0xA5BF9871}, CompressedTensors.pack(new int[] {-7, -1, 0, 1, 7, 3, -3, 2}, 1, 8, 4));
        // a row not filling its last word is padded with 0 (unsigned), each row on its own words
        assertArrayEquals(new int[] {0x987, 0x81F}, CompressedTensors.pack(new int[] {-1, 0, 1, 7, -7, 0}, 2, 3, 4));
    }

    @Test
    void bitmasksArePackbitsLittleEndianPerRow() {
        boolean[] kept = {true, true, false, false, false, true, true, false, true, false,
                false, false, true, true, true, true, false, false, false, false};
        assertArrayEquals(new byte[] {0x63, 0x01, 0x3C, 0x00}, CompressedTensors.bitmask(kept, 2, 10));
    }

    @Test
    void levelsAndScalesReproduceTheSpecsQuantizationExactly() {
        Random random = new Random(4);
        int rows = 16;
        int cols = 256;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(5) - 3));
        }
        for (int group : new int[] {8, 64, 256}) {
            float[] dequantized = ReferenceCompression.int4Group(w, rows, cols, group);
            CompressedTensors.Quantized q = CompressedTensors.Quantized.of("m", dequantized, rows, cols, group, 7);
            assertArrayEquals(unsigned(dequantized), decode(q.levels(), q.scales(), cols, group), "group " + group);
            for (int level : q.levels()) {
                assertTrue(Math.abs(level) <= 7);
            }
        }
        float[] int8 = ReferenceCompression.apply(CompressionSpec.int8(), w, rows, cols);
        CompressedTensors.Quantized q8 = CompressedTensors.Quantized.of("m", int8, rows, cols, cols, 127);
        assertArrayEquals(unsigned(int8), decode(q8.levels(), q8.scales(), cols, cols));
    }

    /**
     * A schedule vLLM can load whole: packed groups (int4g on a layer's q/k/v, int8 on its gate/up, a zeroed and
     * quantized o_proj), the rest dense; and one whose mixed q/k/v and whose 2:4 matrix beside quantized ones it
     * cannot, written dense with the reason.
     */
    @Test
    void quantizedMatricesArePackedAndDecodeToTheEnginesWeights() throws IOException {
        Trial schedule = Trial.none()
                .plus("model.layers.0.self_attn.q_proj", CompressionSpec.int4g(128))
                .plus("model.layers.0.self_attn.k_proj", CompressionSpec.int4g(128))
                .plus("model.layers.0.self_attn.v_proj", CompressionSpec.int4g(128))
                .plus("model.layers.1.mlp.gate_proj", CompressionSpec.int8())
                .plus("model.layers.1.mlp.up_proj", CompressionSpec.int8())
                .plus("model.layers.2.self_attn.o_proj", CompressionSpec.parse("prune:0.5+int4g:64"))
                .plus("model.layers.3.self_attn.q_proj", CompressionSpec.int4g(128))
                .plus("model.layers.4.mlp.down_proj", CompressionSpec.nm(2, 4))
                .plus("lm_head", CompressionSpec.int8());
        Path out = tmp.resolve("packed");
        CheckpointExport.Summary summary = CheckpointExport.write(brown, schedule, out, "float32", null,
                CheckpointExport.Format.COMPRESSED_TENSORS);
        assertEquals(3, summary.notes().size(), summary.notes().toString());
        for (String note : List.of("model.layers.3.self_attn.q_proj int4g:128: written dense; vLLM runs [q_proj, k_proj,"
                + " v_proj] as one matrix", "model.layers.4.mlp.down_proj nm:2:4: written dense",
                "lm_head int8_rowwise: written dense")) {
            assertTrue(summary.notes().stream().anyMatch(n -> n.startsWith(note)), note + " in " + summary.notes());
        }

        Map<String, float[]> expected = brown.compressedWeights(schedule, null);
        Map<String, Written> written = tensors(out);
        List<String> packed = List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                "model.layers.0.self_attn.v_proj", "model.layers.1.mlp.gate_proj", "model.layers.1.mlp.up_proj",
                "model.layers.2.self_attn.o_proj");
        for (String m : packed) {
            int bits = m.contains("mlp") ? 8 : 4;
            int group = m.contains("mlp") ? 0 : m.contains("o_proj") ? 64 : 128;
            long[] shape = brown.config().shapeOf(m);
            int rows = (int) shape[0];
            int cols = (int) shape[1];
            assertFalse(written.containsKey(m + ".weight"), m);
            Written words = written.get(m + ".weight_packed");
            assertEquals("I32", words.dtype());
            assertArrayEquals(new long[] {rows, cols * bits / 32}, words.shape());
            Written scale = written.get(m + ".weight_scale");
            assertEquals("F32", scale.dtype());
            assertArrayEquals(new long[] {rows, group == 0 ? 1 : cols / group}, scale.shape());
            Written shapeOf = written.get(m + ".weight_shape");
            assertEquals("I64", shapeOf.dtype());
            assertArrayEquals(new long[] {rows, cols}, longs(shapeOf.buffer(), 2));
            int[] levels = unpack(ints(words.buffer(), rows * cols * bits / 32), rows, cols, bits);
            float[] scales = floats(scale.buffer(), scale.count());
            assertArrayEquals(unsigned(expected.get(m)), decode(levels, scales, cols, group == 0 ? cols : group), m);
        }
        for (String m : List.of("model.layers.3.self_attn.q_proj", "model.layers.4.mlp.down_proj", "lm_head")) {
            assertArrayEquals(expected.get(m), floats(written.get(m + ".weight").buffer(), expected.get(m).length), m);
        }

        JsonNode q = TestData.readJson(out.resolve("config.json")).get("quantization_config");
        assertEquals("compressed-tensors", q.get("quant_method").asText());
        assertEquals("pack-quantized", q.get("format").asText());
        assertEquals("compressed", q.get("quantization_status").asText());
        assertEquals(CompressedTensors.VERSION, q.get("version").asText());
        assertEquals(3, q.get("config_groups").size());
        Map<String, String> schemes = new TreeMap<>();
        q.get("config_groups").forEach(g -> {
            assertEquals("pack-quantized", g.get("format").asText());
            assertTrue(g.get("input_activations").isNull());
            JsonNode w = g.get("weights");
            assertTrue(w.get("symmetric").asBoolean());
            assertEquals("int", w.get("type").asText());
            g.get("targets").forEach(t -> schemes.put(t.asText(), w.get("num_bits").asInt() + " "
                    + w.get("strategy").asText() + " " + w.get("group_size").asText()));
        });
        assertEquals(Map.of("model.layers.0.self_attn.q_proj", "4 group 128", "model.layers.0.self_attn.k_proj",
                "4 group 128", "model.layers.0.self_attn.v_proj", "4 group 128", "model.layers.1.mlp.gate_proj",
                "8 channel null", "model.layers.1.mlp.up_proj", "8 channel null", "model.layers.2.self_attn.o_proj",
                "4 group 64"), schemes);
        List<String> ignored = new ArrayList<>();
        q.get("ignore").forEach(n -> ignored.add(n.asText()));
        assertEquals(56 - 6 + 1, ignored.size(), "every other linear module, lm_head included");
        assertTrue(ignored.contains("lm_head") && ignored.contains("model.layers.3.self_attn.q_proj"));
        assertEquals(0, q.get("sparsity_config").size());

        JsonNode map = TestData.readJson(out.resolve("model.safetensors.index.json")).get("weight_map");
        assertTrue(map.has("model.layers.0.self_attn.q_proj.weight_packed"));
        assertFalse(map.has("model.layers.0.self_attn.q_proj.weight"));
        assertEquals(written.keySet(), names(map));
    }

    @Test
    void twoOfFourMatricesAreBitmasksAndDecodeToTheEnginesWeights() throws IOException {
        Trial schedule = Trial.none()
                .plus("model.layers.0.mlp.gate_proj", CompressionSpec.nm(2, 4))
                .plus("model.layers.0.mlp.up_proj", CompressionSpec.nm(2, 4))
                .plus("model.layers.5.mlp.down_proj", CompressionSpec.nm(2, 4))
                .plus("model.layers.6.self_attn.k_proj", CompressionSpec.nm(2, 4))
                .plus("model.layers.7.self_attn.o_proj", CompressionSpec.prune(0.5));
        Path out = tmp.resolve("sparse");
        CheckpointExport.Summary summary = CheckpointExport.write(brown, schedule, out, "bfloat16", null,
                CheckpointExport.Format.COMPRESSED_TENSORS);
        assertEquals(1, summary.notes().size(), summary.notes().toString());
        assertTrue(summary.notes().get(0).startsWith("model.layers.6.self_attn.k_proj nm:2:4: written dense"));

        Map<String, float[]> expected = brown.compressedWeights(schedule, null);
        Map<String, Written> written = tensors(out);
        for (String m : List.of("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
                "model.layers.5.mlp.down_proj")) {
            long[] shape = brown.config().shapeOf(m);
            int rows = (int) shape[0];
            int cols = (int) shape[1];
            Written values = written.get(m + ".compressed");
            assertEquals("BF16", values.dtype());
            assertArrayEquals(new long[] {rows, cols / 2}, values.shape());
            Written mask = written.get(m + ".bitmask");
            assertEquals("U8", mask.dtype());
            assertArrayEquals(new long[] {rows, cols / 8}, mask.shape());
            assertEquals("I64", written.get(m + ".shape").dtype());
            assertArrayEquals(new long[] {2, 1}, written.get(m + ".shape").shape());
            assertArrayEquals(new long[] {rows, cols}, longs(written.get(m + ".shape").buffer(), 2));
            // sparse24_bitmask_decompress: the values in row-major order into the positions the bitmask marks
            byte[] bits = new byte[mask.count()];
            mask.buffer().get(bits);
            float[] dense = new float[rows * cols];
            float[] kept = bfloat16s(values.buffer(), rows * cols / 2);
            int next = 0;
            for (int i = 0; i < dense.length; i++) {
                int r = i / cols;
                int c = i % cols;
                if ((bits[r * (cols / 8) + c / 8] >> (c % 8) & 1) == 1) {
                    dense[i] = kept[next++];
                }
            }
            assertEquals(kept.length, next);
            float[] rounded = expected.get(m).clone();
            for (int i = 0; i < rounded.length; i++) {
                rounded[i] = Float.intBitsToFloat(CheckpointExport.floatToBfloat16(rounded[i]) << 16);
            }
            assertArrayEquals(rounded, dense, m);
        }
        JsonNode q = TestData.readJson(out.resolve("config.json")).get("quantization_config");
        assertEquals("compressed-tensors", q.get("quant_method").asText());
        assertFalse(q.has("config_groups"), "sparse only: no quantization config, as update_config writes it");
        JsonNode sparsity = q.get("sparsity_config");
        assertEquals("sparse-24-bitmask", sparsity.get("format").asText());
        assertEquals("2:4", sparsity.get("sparsity_structure").asText());
        List<String> targets = new ArrayList<>();
        sparsity.get("targets").forEach(t -> targets.add(t.asText()));
        assertEquals(List.of("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
                "model.layers.5.mlp.down_proj"), targets);
        long params = brown.config().componentNames().stream().mapToLong(brown.config()::parameters).sum();
        long zeros = 0;
        for (String m : targets) {
            for (float v : expected.get(m)) {
                zeros += v == 0 ? 1 : 0;
            }
        }
        assertEquals((double) zeros / params, sparsity.get("global_sparsity").asDouble());
    }

    @Test
    void theDequantizedFormatIsUnchanged() throws IOException {
        Trial schedule = Trial.of("model.layers.0.self_attn.q_proj", CompressionSpec.int4g(128));
        Path out = tmp.resolve("plain");
        CheckpointExport.Summary summary = CheckpointExport.write(brown, schedule, out, "float32", null);
        assertEquals(List.of(), summary.notes());
        assertFalse(TestData.readJson(out.resolve("config.json")).has("quantization_config"));
        assertArrayEquals(brown.compressedWeights(schedule, null).get("model.layers.0.self_attn.q_proj"),
                floats(tensors(out).get("model.layers.0.self_attn.q_proj.weight").buffer(), 256 * 256));
    }

    /** The values with -0 as 0: an integer level has no signed zero, so level 0 dequantizes to +0. */
    private static float[] unsigned(float[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = values[i] + 0f;
        }
        return out;
    }

    /** dequantize(): x_q · scale, one scale per group of a row. */
    private static float[] decode(int[] levels, float[] scales, int cols, int group) {
        float[] out = new float[levels.length];
        for (int i = 0; i < levels.length; i++) {
            out[i] = levels[i] * scales[(i / cols) * (cols / group) + (i % cols) / group];
        }
        return out;
    }

    /** unpack_from_int32 with packed_dim 1: value k of a word is {@code (word >> bits·k) & mask}, minus the offset. */
    private static int[] unpack(int[] words, int rows, int cols, int bits) {
        int perWord = 32 / bits;
        int wordsPerRow = words.length / rows;
        int mask = (1 << bits) - 1;
        int[] out = new int[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] = ((words[r * wordsPerRow + c / perWord] >> (bits * (c % perWord))) & mask)
                        - (1 << (bits - 1));
            }
        }
        return out;
    }

    private record Written(String dtype, long[] shape, byte[] bytes) {
        ByteBuffer buffer() {
            return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        }

        int count() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return (int) n;
        }
    }

    /** Every tensor of a checkpoint: its dtype, shape and raw bytes. */
    private static Map<String, Written> tensors(Path dir) throws IOException {
        Map<String, Written> out = new TreeMap<>();
        for (Path shard : ModelFiles.resolve(dir, null).shards().keySet()) {
            try (SafeTensors st = new SafeTensors(shard)) {
                for (Map.Entry<String, SafeTensors.Entry> e : st.entries().entrySet()) {
                    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                    st.copyRaw(e.getKey(), Channels.newChannel(bytes));
                    out.put(e.getKey(), new Written(e.getValue().dtype(), e.getValue().shape(), bytes.toByteArray()));
                }
            }
        }
        return out;
    }

    private static Set<String> names(JsonNode map) {
        Set<String> names = new TreeSet<>();
        map.fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static int[] ints(ByteBuffer b, int n) {
        int[] out = new int[n];
        b.asIntBuffer().get(out);
        return out;
    }

    private static long[] longs(ByteBuffer b, int n) {
        long[] out = new long[n];
        b.asLongBuffer().get(out);
        return out;
    }

    private static float[] floats(ByteBuffer b, int n) {
        float[] out = new float[n];
        b.asFloatBuffer().get(out);
        return out;
    }

    private static float[] bfloat16s(ByteBuffer b, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = Float.intBitsToFloat((b.getShort(2 * i) & 0xffff) << 16);
        }
        return out;
    }
}
