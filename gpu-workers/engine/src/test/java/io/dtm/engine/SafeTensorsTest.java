package io.dtm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reads safetensors files written here byte by byte, so every widened float can be checked exactly. */
class SafeTensorsTest {

    @TempDir
    Path dir;

    /** One tensor to write: its dtype, shape and raw little-endian bytes (offsets may be overridden to lie). */
    record Tensor(String dtype, long[] shape, byte[] data, long[] offsetsOverride) {
        Tensor(String dtype, long[] shape, byte[] data) {
            this(dtype, shape, data, null);
        }
    }

    static byte[] f32(float... values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        return b.array();
    }

    static byte[] u16(int... values) {
        ByteBuffer b = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : values) {
            b.putShort((short) v);
        }
        return b.array();
    }

    /** Writes a safetensors file: 8-byte LE header length, JSON header (space-padded to 8 bytes), then the data. */
    static Path write(Path file, Map<String, Tensor> tensors) throws IOException {
        ObjectNode header = TestData.JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Tensor t = e.getValue();
            ObjectNode n = header.putObject(e.getKey());
            n.put("dtype", t.dtype());
            var shape = n.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            long begin = data.size();
            data.write(t.data());
            long[] offsets = t.offsetsOverride() != null ? t.offsetsOverride() : new long[] {begin, data.size()};
            n.putArray("data_offsets").add(offsets[0]).add(offsets[1]);
        }
        StringBuilder json = new StringBuilder(TestData.JSON.writeValueAsString(header));
        while (json.length() % 8 != 0) {
            json.append(' ');
        }
        byte[] headerBytes = json.toString().getBytes(StandardCharsets.UTF_8);
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length);
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        all.write(len.array());
        all.write(headerBytes);
        all.write(data.toByteArray());
        Files.write(file, all.toByteArray());
        return file;
    }

    private static void assertBits(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, "length");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Integer.toHexString(Float.floatToRawIntBits(expected[i])),
                    Integer.toHexString(Float.floatToRawIntBits(actual[i])),
                    "element " + i + ": expected " + expected[i] + " got " + actual[i]);
        }
    }

    // F16 bit patterns and their exact float32 values
    private static final int[] HALF = {
        0x3C00, 0xC000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x8000, 0x0000, 0x7C00, 0xFC00, 0x7BFF, 0x3555, 0x3BFF, 0x1400};
    private static final float[] HALF_AS_FLOAT = {
        1f, -2f, 0x1p-24f, -0x1p-24f, 1023 * 0x1p-24f, 0x1p-14f, -0f, 0f, Float.POSITIVE_INFINITY,
        Float.NEGATIVE_INFINITY, 65504f, 0.333251953125f, 0.99951171875f, 0x1p-10f};

    private Path mixedFile() throws IOException {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("f32", new Tensor("F32", new long[] {2, 3},
                f32(1.5f, -0f, Float.MIN_VALUE, -Float.MAX_VALUE, Float.NEGATIVE_INFINITY, 3.1415927f)));
        // bf16 is the upper half of a float32: 1, -2, -0, +inf, smallest subnormal (2^-133), 1.5, 0x3E4D (0.2001953125)
        t.put("bf16", new Tensor("BF16", new long[] {7}, u16(0x3F80, 0xC000, 0x8000, 0x7F80, 0x0001, 0x3FC0, 0x3E4D)));
        t.put("f16", new Tensor("F16", new long[] {2, 7}, u16(HALF)));
        t.put("scalar", new Tensor("F32", new long[] {}, f32(42f)));
        t.put("nan16", new Tensor("F16", new long[] {2}, u16(0x7E00, 0xFE01)));
        return write(dir.resolve("mixed.safetensors"), t);
    }

    @Test
    void widensF32Bf16AndF16Exactly() throws IOException {
        try (SafeTensors st = new SafeTensors(mixedFile())) {
            assertEquals(java.util.List.of("f32", "bf16", "f16", "scalar", "nan16"),
                    java.util.List.copyOf(st.entries().keySet()), "__metadata__ is not a tensor");
            assertArrayEquals(new long[] {2, 3}, st.entries().get("f32").shape());
            assertEquals("BF16", st.entries().get("bf16").dtype());
            assertBits(new float[] {1.5f, -0f, Float.MIN_VALUE, -Float.MAX_VALUE, Float.NEGATIVE_INFINITY, 3.1415927f},
                    TestData.floats(st, "f32"));
            assertBits(new float[] {1f, -2f, -0f, Float.POSITIVE_INFINITY, Float.intBitsToFloat(0x00010000), 1.5f,
                    0.2001953125f}, TestData.floats(st, "bf16"));
            assertBits(HALF_AS_FLOAT, TestData.floats(st, "f16"));
            assertBits(new float[] {42f}, TestData.floats(st, "scalar"));
            float[] nans = TestData.floats(st, "nan16");
            assertTrue(Float.isNaN(nans[0]) && Float.isNaN(nans[1]), "F16 NaN stays NaN");
        }
    }

    @Test
    void halfToFloatIsExactForEveryHalf() {
        for (int i = 0; i < HALF.length; i++) {
            assertEquals(Float.floatToRawIntBits(HALF_AS_FLOAT[i]),
                    Float.floatToRawIntBits(SafeTensors.halfToFloat((short) HALF[i])), "half 0x" + Integer.toHexString(HALF[i]));
        }
        // every finite half: exact against the arithmetic definition (-1)^s · 2^(e-15) · (1 + m/1024), subnormal m · 2^-24
        for (int h = 0; h < 0x10000; h++) {
            int exp = (h >>> 10) & 0x1f;
            int mant = h & 0x3ff;
            float f = SafeTensors.halfToFloat((short) h);
            if (exp == 0x1f) {
                assertTrue(mant == 0 ? Float.isInfinite(f) : Float.isNaN(f), "half 0x" + Integer.toHexString(h));
                continue;
            }
            double magnitude = exp == 0 ? mant * Math.pow(2, -24) : Math.pow(2, exp - 15) * (1 + mant / 1024.0);
            double expected = (h & 0x8000) != 0 ? -magnitude : magnitude;
            assertEquals(expected, f, 0.0, "half 0x" + Integer.toHexString(h));
            assertEquals((h & 0x8000) != 0, (Float.floatToRawIntBits(f) & 0x80000000) != 0, "sign of 0x" + Integer.toHexString(h));
        }
    }

    @Test
    void wrongByteLengthNamesTheTensorAndFile() throws IOException {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("good", new Tensor("F32", new long[] {2}, f32(1f, 2f)));
        // shape [3] of F32 needs 12 bytes; the offsets claim 8
        t.put("short_one", new Tensor("F32", new long[] {3}, f32(1f, 2f), new long[] {8, 16}));
        Path file = write(dir.resolve("short.safetensors"), t);
        try (SafeTensors st = new SafeTensors(file)) {
            assertArrayEquals(new float[] {1f, 2f}, TestData.floats(st, "good"));
            IOException e = assertThrows(IOException.class, () -> TestData.floats(st, "short_one"));
            assertTrue(e.getMessage().contains("short_one"), e.getMessage());
            assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
            assertTrue(e.getMessage().contains("12"), "expected byte count in: " + e.getMessage());
            IOException missing = assertThrows(IOException.class, () -> TestData.floats(st, "absent"));
            assertTrue(missing.getMessage().contains("absent"), missing.getMessage());
        }
    }

    @Test
    void unsupportedDtypeNamesTheTensorAndDtype() throws IOException {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("ints", new Tensor("I8", new long[] {4}, new byte[] {1, 2, 3, 4}));
        Path file = write(dir.resolve("int8.safetensors"), t);
        try (SafeTensors st = new SafeTensors(file)) {
            IOException e = assertThrows(IOException.class, () -> TestData.floats(st, "ints"));
            assertTrue(e.getMessage().contains("ints"), e.getMessage());
            assertTrue(e.getMessage().contains("I8"), e.getMessage());
            assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        }
    }

    @Test
    void notASafetensorsFileNamesTheFile() throws IOException {
        Path text = dir.resolve("readme.safetensors");
        Files.writeString(text, "This is a plain text file, certainly not a safetensors checkpoint.\n");
        IOException e = assertThrows(IOException.class, () -> new SafeTensors(text));
        assertTrue(e.getMessage().contains(text.toString()), e.getMessage());

        // a header length that points past the end of the file
        Path truncated = dir.resolve("truncated.safetensors");
        byte[] whole = Files.readAllBytes(mixedFile());
        Files.write(truncated, java.util.Arrays.copyOf(whole, 20));
        IOException t = assertThrows(IOException.class, () -> new SafeTensors(truncated));
        assertTrue(t.getMessage().contains(truncated.toString()), t.getMessage());
    }

    @Test
    void fileShorterThanTheLengthPrefixNamesTheFile() throws IOException {
        Path tiny = dir.resolve("three-bytes.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        IOException e = assertThrows(IOException.class, () -> new SafeTensors(tiny));
        assertTrue(e.getMessage().contains(tiny.toString()), e.getMessage());
        Path empty = dir.resolve("empty.safetensors");
        Files.write(empty, new byte[0]);
        IOException e2 = assertThrows(IOException.class, () -> new SafeTensors(empty));
        assertTrue(e2.getMessage().contains(empty.toString()), e2.getMessage());
    }

    @Test
    void headerThatIsNotJsonNamesTheFile() throws IOException {
        Path file = dir.resolve("garbage-header.safetensors");
        byte[] header = "this is no json!".getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + 8).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        Files.write(file, b.array());
        IOException e = assertThrows(IOException.class, () -> new SafeTensors(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    @Test
    void tensorRunningPastTheEndOfTheFileNamesTheTensor() throws IOException {
        // consistent offsets for shape [1000] of F32 (4000 bytes), but the file holds only 8 data bytes (a truncated
        // download): opening it must fail naming the tensor and the file, not with a bare I/O or memory fault
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("cut_off", new Tensor("F32", new long[] {1000}, f32(1f, 2f), new long[] {0, 4000}));
        Path file = write(dir.resolve("cut.safetensors"), t);
        IOException e = assertThrows(IOException.class, () -> new SafeTensors(file).close());
        assertTrue(e.getMessage().contains("cut_off") && e.getMessage().contains(file.toString()), e.getMessage());
    }

    // ---------------------------------------------------------------- Checkpoint

    /** A model directory with the config and tokenizer files {@link ModelFiles} requires (their content unread here). */
    private Path modelDir(String name) throws IOException {
        Path d = Files.createDirectories(dir.resolve(name));
        Files.writeString(d.resolve("config.json"), "{}");
        Files.writeString(d.resolve("tokenizer.json"), "{}");
        return d;
    }

    private Path shardedDir(boolean withSecondShard) throws IOException {
        Path d = modelDir(withSecondShard ? "sharded" : "missing-shard");
        Map<String, Tensor> one = new LinkedHashMap<>();
        one.put("a.weight", new Tensor("F32", new long[] {2, 2}, f32(1f, 2f, 3f, 4f)));
        write(d.resolve("model-00001-of-00002.safetensors"), one);
        if (withSecondShard) {
            Map<String, Tensor> two = new LinkedHashMap<>();
            two.put("b.weight", new Tensor("BF16", new long[] {3}, u16(0x3F80, 0x4000, 0xC040)));
            write(d.resolve("model-00002-of-00002.safetensors"), two);
        }
        ObjectNode index = TestData.JSON.createObjectNode();
        index.putObject("metadata").put("total_size", 22);
        ObjectNode map = index.putObject("weight_map");
        map.put("a.weight", "model-00001-of-00002.safetensors");
        map.put("b.weight", "model-00002-of-00002.safetensors");
        TestData.JSON.writeValue(d.resolve("model.safetensors.index.json").toFile(), index);
        return d;
    }

    @Test
    void shardedCheckpointReadsEveryShard() throws IOException {
        try (Checkpoint c = new Checkpoint(shardedDir(true))) {
            assertTrue(c.has("a.weight") && c.has("b.weight"));
            assertFalse(c.has("c.weight"));
            assertArrayEquals(new float[] {1f, 2f, 3f, 4f}, TestData.load(c, "a.weight", 2, 2));
            assertArrayEquals(new float[] {1f, 2f, -3f}, TestData.load(c, "b.weight", 3));
            IOException e = assertThrows(IOException.class, () -> TestData.load(c, "c.weight", 1));
            assertTrue(e.getMessage().contains("c.weight"), e.getMessage());
        }
    }

    @Test
    void indexNamingATensorItsShardLacksFailsNamingTheTensor() throws IOException {
        Path d = shardedDir(true);
        ObjectNode index = (ObjectNode) TestData.readJson(d.resolve("model.safetensors.index.json"));
        ((ObjectNode) index.path("weight_map")).put("c.weight", "model-00001-of-00002.safetensors");
        TestData.JSON.writeValue(d.resolve("model.safetensors.index.json").toFile(), index);
        try (Checkpoint c = new Checkpoint(d)) {
            IOException e = assertThrows(IOException.class, () -> TestData.load(c, "c.weight", 2));
            assertTrue(e.getMessage().contains("c.weight"), e.getMessage());
        }
    }

    @Test
    void missingShardIsNamed() throws IOException {
        Path d = shardedDir(false);
        FileNotFoundException e = assertThrows(FileNotFoundException.class, () -> new Checkpoint(d));
        assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors"), e.getMessage());
        assertTrue(e.getMessage().contains("model.safetensors.index.json"), e.getMessage());
    }

    @Test
    void directoryWithoutWeightsIsNamed() throws IOException {
        Path d = modelDir("empty-model");
        FileNotFoundException e = assertThrows(FileNotFoundException.class, () -> new Checkpoint(d));
        assertTrue(e.getMessage().contains(d.toString()), e.getMessage());
    }

    @Test
    void shapeMismatchNamesTensorAndBothShapes() throws IOException {
        Path d = modelDir("single");
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("model.layers.0.mlp.up_proj.weight", new Tensor("F32", new long[] {2, 3}, f32(1, 2, 3, 4, 5, 6)));
        write(d.resolve("model.safetensors"), t);
        try (Checkpoint c = new Checkpoint(d)) {
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, TestData.load(c, "model.layers.0.mlp.up_proj.weight", 2, 3));
            IOException e = assertThrows(IOException.class, () -> TestData.load(c, "model.layers.0.mlp.up_proj.weight", 3, 2));
            assertTrue(e.getMessage().contains("model.layers.0.mlp.up_proj.weight"), e.getMessage());
            assertTrue(e.getMessage().contains("[2, 3]"), "actual shape in: " + e.getMessage());
            assertTrue(e.getMessage().contains("[3, 2]"), "expected shape in: " + e.getMessage());
            // same numel, different rank is also a mismatch
            assertThrows(IOException.class, () -> TestData.load(c, "model.layers.0.mlp.up_proj.weight", 6));
        }
    }

    @Test
    void loadingInSmallChunksGivesTheSameTensorsInEitherDtype() throws IOException {
        ModelFiles brown = ModelFiles.resolve(TestData.brownDir(), null);
        try (Checkpoint whole = new Checkpoint(brown);
             Checkpoint chunked = new Checkpoint(brown, 1000);
             ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager(ai.djl.Device.cpu(), "PyTorch")) {
            for (String name : List.of("model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight")) {
                long[] shape = name.startsWith("model.embed") ? new long[] {4096, 256} : new long[] {256, 704};
                assertArrayEquals(whole.load(name, m, ai.djl.ndarray.types.DataType.FLOAT32, shape).toFloatArray(),
                        chunked.load(name, m, ai.djl.ndarray.types.DataType.FLOAT32, shape).toFloatArray(), name);
                // float16 on the device, from float32 chunks: torch's rounding, chunk by chunk the same
                assertArrayEquals(whole.load(name, m, ai.djl.ndarray.types.DataType.FLOAT16, shape).toByteArray(),
                        chunked.load(name, m, ai.djl.ndarray.types.DataType.FLOAT16, shape).toByteArray(), name);
            }
        }
    }
}
