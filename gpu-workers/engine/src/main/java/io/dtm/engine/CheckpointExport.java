package io.dtm.engine;


import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
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

    /** How scheduled matrices are stored. */
    public enum Format {
        /** Every matrix dense, its compression applied and dequantized: any loader runs it. */
        DEQUANTIZED,
        /** int4g and int8 packed, nm:2:4 as a bitmask, as {@link CompressedTensors} describes; the rest dense. */
        COMPRESSED_TENSORS
    }

    /**
     * What was written; {@code notes} name each matrix stored otherwise than its compression's format (see
     * {@link CompressedTensors#plan}).
     */
    public record Summary(Path out, int files, int tensors, int compressed, long bytes, String dtype,
                          List<String> notes) {
        public Summary {
            notes = List.copyOf(notes);
        }
    }

    private CheckpointExport() {}

    /** {@link #write(DivergenceEngine, Trial, Path, String, PromptSet, Format)} dequantized. */
    public static Summary write(DivergenceEngine engine, Trial schedule, Path out, String dtype, PromptSet prompts)
            throws IOException {
        return write(engine, schedule, out, dtype, prompts, Format.DEQUANTIZED);
    }

    /**
     * Writes {@code schedule}'s model to {@code out} (which must not exist, or be empty) in {@code dtype} (null: the
     * source's), its matrices stored as {@code format} says. The engine must compute in float32, so that compressions
     * see the exact source weights; {@code prompts} gives activation-weighted compressions (Wanda) their input norms,
     * null if the schedule has none.
     */
    public static Summary write(DivergenceEngine engine, Trial schedule, Path out, String dtype, PromptSet prompts,
                                Format format) throws IOException {
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
        LlamaConfig config = engine.config();
        CompressedTensors.Plan plan = format == Format.COMPRESSED_TENSORS
                ? CompressedTensors.plan(schedule.changes(), config.numLayers())
                : new CompressedTensors.Plan(Map.of(), List.of());
        ObjectMapper json = new ObjectMapper();
        int copied = copyOtherFiles(files, out, dtypeName(target),
                CompressedTensors.config(json, plan, linear(config), sparse24Zeros(plan, weights, config)));
        int tensors = 0;
        int compressed = 0;
        long total = 0;
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Path shard : files.shards().keySet()) {
            try (SafeTensors source = new SafeTensors(shard)) {
                Map<String, List<CompressedTensors.Tensor>> replaced = new LinkedHashMap<>();
                for (Map.Entry<String, SafeTensors.Entry> e : source.entries().entrySet()) {
                    String name = e.getKey();
                    String component = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
                    if (component != null && weights.containsKey(component)) {
                        long[] shape = e.getValue().shape();
                        replaced.put(name, CompressedTensors.encode(component,
                                plan.layouts().getOrDefault(component, new CompressedTensors.Dense()),
                                weights.get(component), (int) shape[0], (int) shape[1], target));
                        compressed++;
                    }
                }
                total += writeShard(source, out.resolve(shard.getFileName()), target, replaced);
                for (String name : source.entries().keySet()) {
                    List<String> written = replaced.containsKey(name)
                            ? replaced.get(name).stream().map(CompressedTensors.Tensor::name).toList() : List.of(name);
                    written.forEach(n -> weightMap.put(n, shard.getFileName().toString()));
                    tensors += written.size();
                }
            }
        }
        if (files.index() != null) {
            ObjectNode index = (ObjectNode) json.readTree(files.index().toFile());
            index.withObject("/metadata").put("total_size", total);
            index.set("weight_map", json.valueToTree(weightMap));
            json.writerWithDefaultPrettyPrinter().writeValue(out.resolve(files.index().getFileName()).toFile(), index);
        }
        return new Summary(out, copied + files.shards().size() + (files.index() == null ? 0 : 1), tensors, compressed,
                total, dtypeName(target), plan.notes());
    }

    /** Every linear module of the model as compressed-tensors names them: the decoder's components and lm_head. */
    private static List<String> linear(LlamaConfig config) {
        List<String> all = new ArrayList<>(config.componentNames());
        all.add(ModelWeights.LM_HEAD);
        return all;
    }

    /** The zeros of the matrices stored 2:4 sparse, over all decoder components' parameters. */
    private static double sparse24Zeros(CompressedTensors.Plan plan, Map<String, float[]> weights, LlamaConfig config) {
        long zeros = 0;
        for (Map.Entry<String, CompressedTensors.Layout> e : plan.layouts().entrySet()) {
            if (e.getValue() instanceof CompressedTensors.Sparse24) {
                for (float v : weights.get(e.getKey())) {
                    zeros += v == 0 ? 1 : 0;
                }
            }
        }
        long params = config.componentNames().stream().mapToLong(config::parameters).sum();
        return (double) zeros / params;
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

    /**
     * Copies config, tokenizer and every other file that is not weights; config.json gets the output dtype and, when
     * not null, {@code quantization} as its {@code quantization_config}.
     */
    private static int copyOtherFiles(ModelFiles files, Path out, String dtype, ObjectNode quantization)
            throws IOException {
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
                    if (quantization != null) {
                        config.set("quantization_config", quantization);
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
     * Writes one shard with the source's tensors in the source's order: a {@code replaced} one as the tensors given for
     * it, the others the source's bytes (converted when the dtype changes). Returns the tensor bytes written.
     */
    private static long writeShard(SafeTensors source, Path file, String dtype,
                                   Map<String, List<CompressedTensors.Tensor>> replaced) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Map.Entry<String, SafeTensors.Entry> e : source.entries().entrySet()) {
            if (replaced.containsKey(e.getKey())) {
                for (CompressedTensors.Tensor written : replaced.get(e.getKey())) {
                    offset = describe(header, written.name(), written.dtype(), written.shape(), offset,
                            written.bytes().length);
                }
                continue;
            }
            SafeTensors.Entry entry = e.getValue();
            boolean converts = DTYPES.containsValue(entry.dtype());
            long bytes = converts ? entry.numel() * width(dtype) : entry.end() - entry.begin();
            offset = describe(header, e.getKey(), converts ? dtype : entry.dtype(), entry.shape(), offset, bytes);
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
                    for (CompressedTensors.Tensor written : replaced.get(name)) {
                        write(ch, ByteBuffer.wrap(written.bytes()));
                    }
                } else if (!DTYPES.containsValue(entry.dtype()) || entry.dtype().equals(dtype)) {
                    source.copyRaw(name, ch);
                } else {
                    convert(source, name, entry, dtype, ch);
                }
            }
        }
        return offset;
    }

    /** Adds a tensor to a safetensors header at {@code offset}; returns the offset after it. */
    private static long describe(ObjectNode header, String name, String dtype, long[] shape, long offset, long bytes) {
        ObjectNode t = header.putObject(name);
        t.put("dtype", dtype);
        ArrayNode dims = t.putArray("shape");
        for (long d : shape) {
            dims.add(d);
        }
        t.putArray("data_offsets").add(offset).add(offset + bytes);
        return offset + bytes;
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
