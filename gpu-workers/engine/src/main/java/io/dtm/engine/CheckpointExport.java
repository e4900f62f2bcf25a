package io.dtm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Writes a schedule's model as a Hugging Face checkpoint ({@code dtm apply}): the source's config and tokenizer files,
 * and safetensors sharded exactly like the source (same files, same tensors in each, same index). Every scheduled matrix
 * is compressed as dtm-spec defines it, from the source weight widened exactly to float32; every other tensor is the
 * source's, byte for byte when the dtype stays. The output dtype is the source's by default: int8/int4 dequantized
 * values are then rounded to it (bfloat16 keeps 8 bits of mantissa), so {@code float32} is the exact one.
 */
public final class CheckpointExport {

    /** Output dtypes by the name config.json gives them, and their safetensors names. */
    private static final Map<String, String> DTYPES = Map.of("float32", "F32", "bfloat16", "BF16", "float16", "F16");

    /** What was written. */
    public record Summary(Path out, int files, int tensors, int compressed, long bytes, String dtype) {}

    private CheckpointExport() {}

    /**
     * Writes {@code schedule}'s model to {@code out} (which must not exist, or be empty) in {@code dtype} (null: the
     * source's). The engine must compute in float32, so that compressions see the exact source weights; {@code prompts}
     * gives activation-weighted compressions (Wanda) their input norms, null if the schedule has none.
     */
    public static Summary write(DivergenceEngine engine, Trial schedule, Path out, String dtype, PromptSet prompts)
            throws IOException {
        if (!engine.dtypeName().equals("float32")) {
            throw new IllegalArgumentException("apply needs an engine computing in float32 (the exact weights), not "
                    + engine.dtypeName());
        }
        if (dtype != null && !DTYPES.containsKey(dtype)) {
            throw new IllegalArgumentException("dtype must be one of " + DTYPES.keySet() + ", got '" + dtype + "'");
        }
        if (Files.exists(out) && (!Files.isDirectory(out) || isNotEmpty(out))) {
            throw new IllegalArgumentException("output directory " + out + " exists and is not empty");
        }
        ModelFiles files = engine.files();
        try (Checkpoint checkpoint = new Checkpoint(files)) {
            for (String component : schedule.changes().keySet()) {
                engine.parameters(component); // an unknown component fails before anything is written
                if (!checkpoint.has(component + ".weight")) {
                    throw new IllegalArgumentException("the checkpoint stores no " + component + ".weight (a tied"
                            + " matrix is scheduled under the name it is stored as)");
                }
            }
        }
        Files.createDirectories(out);
        String sourceDtype = files.weightDtype();
        String target = dtype == null ? sourceDtype : DTYPES.get(dtype);
        Map<String, float[]> weights = engine.compressedWeights(schedule, prompts);
        int copied = copyOtherFiles(files, out, dtypeName(target));
        int tensors = 0;
        int compressed = 0;
        long total = 0;
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Path shard : files.shards().keySet()) {
            try (SafeTensors source = new SafeTensors(shard)) {
                Map<String, byte[]> replaced = new LinkedHashMap<>();
                for (String name : source.entries().keySet()) {
                    String component = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
                    if (component != null && weights.containsKey(component)) {
                        replaced.put(name, encode(weights.get(component), target));
                        compressed++;
                    }
                }
                total += writeShard(source, out.resolve(shard.getFileName()), target, replaced);
                tensors += source.entries().size();
                source.entries().keySet().forEach(n -> weightMap.put(n, shard.getFileName().toString()));
            }
        }
        if (files.index() != null) {
            ObjectMapper json = new ObjectMapper();
            ObjectNode index = (ObjectNode) json.readTree(files.index().toFile());
            index.withObject("/metadata").put("total_size", total);
            json.writerWithDefaultPrettyPrinter().writeValue(out.resolve(files.index().getFileName()).toFile(), index);
        }
        return new Summary(out, copied + files.shards().size() + (files.index() == null ? 0 : 1), tensors, compressed,
                total, dtypeName(target));
    }

    private static boolean isNotEmpty(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isPresent();
        }
    }

    private static String dtypeName(String safetensorsDtype) {
        return DTYPES.entrySet().stream().filter(e -> e.getValue().equals(safetensorsDtype)).findFirst()
                .orElseThrow().getKey();
    }

    /** Copies config, tokenizer and every other file that is not weights; config.json gets the output dtype. */
    private static int copyOtherFiles(ModelFiles files, Path out, String dtype) throws IOException {
        int copied = 0;
        try (Stream<Path> all = Files.list(files.dir())) {
            for (Path f : all.filter(Files::isRegularFile).toList()) {
                String name = f.getFileName().toString();
                if (name.endsWith(".safetensors") || name.equals("model.safetensors.index.json")) {
                    continue;
                }
                if (name.equals("config.json")) {
                    ObjectMapper json = new ObjectMapper();
                    ObjectNode config = (ObjectNode) json.readTree(f.toFile());
                    boolean named = false;
                    for (String key : List.of("torch_dtype", "dtype")) {
                        if (config.has(key)) {
                            config.put(key, dtype);
                            named = true;
                        }
                    }
                    if (!named) {
                        config.put("torch_dtype", dtype);
                    }
                    json.writerWithDefaultPrettyPrinter().writeValue(out.resolve(name).toFile(), config);
                } else {
                    Files.copy(f, out.resolve(name));
                }
                copied++;
            }
        }
        return copied;
    }

    /**
     * Writes one shard with the source's tensors in the source's order: {@code replaced} ones as given, the others the
     * source's bytes (converted when the dtype changes). Returns the tensor bytes written.
     */
    private static long writeShard(SafeTensors source, Path file, String dtype, Map<String, byte[]> replaced)
            throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Map.Entry<String, SafeTensors.Entry> e : source.entries().entrySet()) {
            SafeTensors.Entry entry = e.getValue();
            boolean converts = DTYPES.containsValue(entry.dtype());
            long bytes = converts ? entry.numel() * width(dtype) : entry.end() - entry.begin();
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", converts ? dtype : entry.dtype());
            JsonNode shape = json.valueToTree(entry.shape());
            t.set("shape", shape);
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] text = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (text.length + 7) / 8 * 8; // the format pads the header with spaces to 8 bytes
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(padded).put(text);
            while (head.hasRemaining()) {
                head.put((byte) ' ');
            }
            write(ch, head.flip());
            for (Map.Entry<String, SafeTensors.Entry> e : source.entries().entrySet()) {
                String name = e.getKey();
                SafeTensors.Entry entry = e.getValue();
                if (replaced.containsKey(name)) {
                    write(ch, ByteBuffer.wrap(replaced.get(name)));
                } else if (!DTYPES.containsValue(entry.dtype()) || entry.dtype().equals(dtype)) {
                    source.copyRaw(name, ch);
                } else {
                    convert(source, name, entry, dtype, ch);
                }
            }
        }
        return offset;
    }

    /** A tensor widened to float32 and encoded in {@code dtype}, a chunk at a time. */
    private static void convert(SafeTensors source, String name, SafeTensors.Entry entry, String dtype, FileChannel ch)
            throws IOException {
        int chunk = 1 << 22;
        ByteBuffer floats = ByteBuffer.allocate(4 * chunk).order(ByteOrder.nativeOrder());
        for (long first = 0; first < entry.numel(); first += chunk) {
            int count = (int) Math.min(chunk, entry.numel() - first);
            floats.clear();
            source.widen(name, first, count, floats);
            float[] values = new float[count];
            floats.asFloatBuffer().get(values);
            write(ch, ByteBuffer.wrap(encode(values, dtype)));
        }
    }

    private static void write(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static int width(String dtype) {
        return dtype.equals("F32") ? 4 : 2;
    }

    /** Float32 values as little-endian {@code dtype} bytes, rounded to nearest even. */
    static byte[] encode(float[] values, String dtype) {
        ByteBuffer out = ByteBuffer.allocate(values.length * width(dtype)).order(ByteOrder.LITTLE_ENDIAN);
        switch (dtype.toUpperCase(Locale.ROOT)) {
            case "F32" -> out.asFloatBuffer().put(values);
            case "BF16" -> {
                for (float v : values) {
                    out.putShort(floatToBfloat16(v));
                }
            }
            case "F16" -> {
                for (float v : values) {
                    out.putShort(floatToHalf(v));
                }
            }
            default -> throw new IllegalArgumentException("unsupported output dtype " + dtype);
        }
        return out.array();
    }

    /** bfloat16 is float32's upper half: round to nearest even on the lower 16 bits (NaN stays a quiet NaN). */
    static short floatToBfloat16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** IEEE binary32 to binary16, round to nearest even, with subnormals, overflow to infinity and NaN. */
    static short floatToHalf(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exponent = (bits >>> 23) & 0xff;
        int mantissa = bits & 0x7fffff;
        if (exponent == 0xff) {
            return (short) (sign | 0x7c00 | (mantissa != 0 ? 0x200 | (mantissa >>> 13) : 0));
        }
        int e = exponent - 127 + 15;
        if (e >= 0x1f) {
            return (short) (sign | 0x7c00);
        }
        if (e <= 0) {
            if (e < -10) {
                return (short) sign;
            }
            int m = mantissa | 0x800000;
            int shift = 14 - e;
            int half = m >>> shift;
            int rest = m & ((1 << shift) - 1);
            int halfway = 1 << (shift - 1);
            if (rest > halfway || (rest == halfway && (half & 1) != 0)) {
                half++;
            }
            return (short) (sign | half);
        }
        int half = (e << 10) | (mantissa >>> 13);
        int rest = mantissa & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (half & 1) != 0)) {
            half++; // a carry into the exponent is still the right value, up to infinity
        }
        return (short) (sign | half);
    }
}
