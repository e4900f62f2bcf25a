package io.dtm.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.dtm.schemas.CompressionSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * dtm's compressions in the compressed-tensors format, as neuralmagic/compressed-tensors 0.12 writes and vLLM reads it
 * ({@code quantization_config} with {@code "quant_method": "compressed-tensors"} in config.json):
 * <ul>
 *   <li>{@code int4g:G}, alone or after a zeroing step: {@code pack-quantized}, symmetric int4 per group of G.
 *       {@code <m>.weight_packed} int32 {@code [out, ceil(in/8)]}: value q of column c stored as q + 8 in bits
 *       {@code 4·(c mod 8)} of word {@code c / 8}, padding columns 0; {@code <m>.weight_scale} {@code [out, in/G]} in
 *       the output dtype; {@code <m>.weight_shape} int64 {@code [out, in]}. Dequantized as q · scale.
 *   <li>{@code int8_rowwise}: the same with 8 bits (q + 128, 4 a word) and one scale per row ({@code channel},
 *       {@code weight_scale} {@code [out, 1]}).
 *   <li>{@code nm:2:4}: {@code sparse-24-bitmask}. {@code <m>.compressed} {@code [out, in/2]} in the output dtype: the
 *       two kept values of every group of 4, in row-major order; {@code <m>.bitmask} uint8 {@code [out, ceil(in/8)]}:
 *       bit {@code c mod 8} of byte {@code c / 8} set for a kept column; {@code <m>.shape} int64 {@code [[out], [in]]}.
 * </ul>
 * Everything else (prune, wanda, other N:M) is stored dense, as is anything vLLM could not load: it runs q/k/v and
 * gate/up of a layer as one matrix, which takes one format, it has no way to leave a sparse-only 2:4 layer
 * unquantized in a checkpoint that quantizes others, and its linear schemes are the decoder layers' (not lm_head's or
 * the embeddings'); {@link Plan#notes} says which and why.
 *
 * <p>The integers and scales are recovered from the engine's dequantized float32 weights, and a matrix is written packed
 * only if {@code q · scale} reproduces every one of its values exactly (a -0 as 0: a level has no signed zero): the
 * checkpoint holds dtm's compression, not an approximation of it. In float16 or bfloat16 the scales are rounded to that
 * dtype, as in any such checkpoint.
 */
final class CompressedTensors {

    /** The compressed-tensors release whose published format this follows. */
    static final String VERSION = "0.12.2";

    private CompressedTensors() {}

    /** How one component is stored. */
    sealed interface Layout permits Dense, Packed, Sparse24 {}

    /** Its weight as a dense matrix in the output dtype. */
    record Dense() implements Layout {}

    /** {@code pack-quantized}: {@code bits} 4 or 8, per {@code group} input columns, or per row ({@code group} 0). */
    record Packed(int bits, int group) implements Layout {
        Packed {
            if (bits != 4 && bits != 8) {
                throw new IllegalArgumentException("pack-quantized holds 4 or 8 bits here, not " + bits);
            }
            if (group < 0) {
                throw new IllegalArgumentException("a group has at least one column, or is 0 for a whole row");
            }
        }

        int maxLevel() {
            return (1 << (bits - 1)) - 1;
        }
    }

    /** {@code sparse-24-bitmask}. */
    record Sparse24() implements Layout {}

    /** Each scheduled component's layout, and a line for each one stored otherwise than its kind would be. */
    record Plan(Map<String, Layout> layouts, List<String> notes) {
        Plan {
            layouts = Collections.unmodifiableMap(new TreeMap<>(layouts));
            notes = List.copyOf(notes);
        }

        boolean quantizes() {
            return layouts.values().stream().anyMatch(l -> l instanceof Packed);
        }

        boolean sparse() {
            return layouts.values().stream().anyMatch(l -> l instanceof Sparse24);
        }
    }

    /** Matrices vLLM runs as one: q/k/v and gate/up of a layer. */
    private static final List<List<String>> FUSED = List.of(
            List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
            List.of("mlp.gate_proj", "mlp.up_proj"));

    /** The layouts of {@code schedule}'s components in a model of {@code layers} decoder layers. */
    static Plan plan(Map<String, CompressionSpec> schedule, int layers) {
        Map<String, Layout> layouts = new TreeMap<>();
        List<String> notes = new ArrayList<>();
        schedule.forEach((component, spec) -> {
            Layout layout = layoutOf(spec);
            if (!component.startsWith("model.layers.") && !(layout instanceof Dense)) {
                layout = new Dense();
                notes.add(component + " " + spec + ": written dense; compressed-tensors schemes apply to the decoder's"
                        + " linear layers here");
            }
            layouts.put(component, layout);
            if (spec.steps().size() > 1 && spec.steps().get(0) instanceof CompressionSpec.NM
                    && layoutOf(spec) instanceof Packed) {
                notes.add(component + " " + spec + ": packed with its zeros stored; the 2:4 kernels' marlin-24 layout"
                        + " is not written");
            }
        });
        for (int l = 0; l < layers; l++) {
            for (List<String> group : FUSED) {
                List<String> names = new ArrayList<>();
                for (String local : group) {
                    names.add(LlamaConfig.componentName(l, local));
                }
                List<Layout> found = names.stream().map(n -> layouts.getOrDefault(n, new Dense())).toList();
                if (found.stream().distinct().count() > 1) {
                    for (String n : names) {
                        if (!(layouts.getOrDefault(n, new Dense()) instanceof Dense)) {
                            layouts.put(n, new Dense());
                            notes.add(n + " " + schedule.get(n) + ": written dense; vLLM runs " + names.stream()
                                    .map(x -> x.substring(x.lastIndexOf('.') + 1)).toList() + " as one matrix, which"
                                    + " takes one format, and they differ here");
                        }
                    }
                }
            }
        }
        boolean quantizes = layouts.values().stream().anyMatch(x -> x instanceof Packed);
        for (Map.Entry<String, Layout> e : layouts.entrySet()) {
            if (quantizes && e.getValue() instanceof Sparse24) {
                e.setValue(new Dense());
                notes.add(e.getKey() + " nm:2:4: written dense; vLLM cannot keep a sparse-only 2:4 layer unquantized"
                        + " in a checkpoint that quantizes others");
            }
        }
        return new Plan(layouts, notes);
    }

    private static Layout layoutOf(CompressionSpec spec) {
        CompressionSpec.Step last = spec.steps().get(spec.steps().size() - 1);
        if (last instanceof CompressionSpec.Int4Group g) {
            return new Packed(4, g.group());
        }
        if (last instanceof CompressionSpec.Int8Rowwise) {
            return new Packed(8, 0);
        }
        return spec.steps().equals(List.of(new CompressionSpec.NM(2, 4))) ? new Sparse24() : new Dense();
    }

    /** A tensor of the output: its name, safetensors dtype, shape and little-endian bytes. */
    record Tensor(String name, String dtype, long[] shape, byte[] bytes) {}

    /**
     * The tensors that store {@code component}'s dequantized float32 weight {@code w} [rows, cols] in its layout, with
     * float values (dense weights, scales, kept values) in {@code dtype}.
     */
    static List<Tensor> encode(String component, Layout layout, float[] w, int rows, int cols, String dtype) {
        if (layout instanceof Packed p) {
            int group = p.group() == 0 ? cols : p.group();
            Quantized q = Quantized.of(component, w, rows, cols, group, p.maxLevel());
            int perWord = 32 / p.bits();
            return List.of(
                    new Tensor(component + ".weight_packed", "I32", new long[] {rows, (cols + perWord - 1) / perWord},
                            littleEndian(pack(q.levels(), rows, cols, p.bits()))),
                    new Tensor(component + ".weight_scale", dtype, new long[] {rows, cols / group},
                            CheckpointExport.encode(q.scales(), dtype)),
                    new Tensor(component + ".weight_shape", "I64", new long[] {2}, longs(rows, cols)));
        }
        if (layout instanceof Sparse24) {
            boolean[] kept = twoOfFour(component, w, rows, cols);
            float[] values = new float[rows * cols / 2];
            int n = 0;
            for (int i = 0; i < w.length; i++) {
                if (kept[i]) {
                    values[n++] = w[i];
                }
            }
            return List.of(
                    new Tensor(component + ".compressed", dtype, new long[] {rows, cols / 2},
                            CheckpointExport.encode(values, dtype)),
                    new Tensor(component + ".bitmask", "U8", new long[] {rows, (cols + 7) / 8}, bitmask(kept, rows, cols)),
                    new Tensor(component + ".shape", "I64", new long[] {2, 1}, longs(rows, cols)));
        }
        return List.of(new Tensor(component + ".weight", dtype, new long[] {rows, cols}, CheckpointExport.encode(w, dtype)));
    }

    /** Integer levels and the scales they are multiplied by, one scale per group of a row. */
    record Quantized(int[] levels, float[] scales) {

        /**
         * The levels and scales behind the dequantized {@code w}: per group, the scale s near max|w| / maxLevel (the
         * spec's absmax scale, which the largest entry reaches at ± maxLevel) for which {@code rint(w / s) · s}
         * gives back every value; a zero group keeps scale 1, as the spec's.
         *
         * @throws IllegalStateException when no scale reproduces a group, which would mean {@code w} is not a
         *                               symmetric quantization with {@code maxLevel} levels
         */
        static Quantized of(String component, float[] w, int rows, int cols, int group, int maxLevel) {
            if (cols % group != 0) {
                throw new IllegalArgumentException(component + ": " + cols + " columns are not a multiple of " + group);
            }
            int groups = cols / group;
            int[] levels = new int[w.length];
            float[] scales = new float[rows * groups];
            for (int r = 0; r < rows; r++) {
                for (int g = 0; g < groups; g++) {
                    int from = r * cols + g * group;
                    float max = 0;
                    for (int i = from; i < from + group; i++) {
                        max = Math.max(max, Math.abs(w[i]));
                    }
                    scales[r * groups + g] = max == 0 ? 1f : scale(w, from, group, max / maxLevel, maxLevel, levels);
                    if (Float.isNaN(scales[r * groups + g])) {
                        throw new IllegalStateException(component + ": row " + r + " columns " + g * group + ".."
                                + ((g + 1) * group - 1) + " are not a symmetric " + (2 * maxLevel + 1)
                                + "-level quantization (no scale reproduces them)");
                    }
                }
            }
            return new Quantized(levels, scales);
        }

        /**
         * The first float of estimate, +1, -1, +2, -2, ... 4 ulps from it that reproduces the group, its levels
         * written into {@code levels}; NaN if none does.
         */
        private static float scale(float[] w, int from, int group, float estimate, int maxLevel, int[] levels) {
            for (int step = 0; step <= 8; step++) {
                float candidate = estimate;
                for (int i = 0; i < (step + 1) / 2; i++) {
                    candidate = step % 2 == 1 ? Math.nextUp(candidate) : Math.nextDown(candidate);
                }
                if (reproduces(w, from, group, candidate, maxLevel, levels)) {
                    return candidate;
                }
            }
            return Float.NaN;
        }

        private static boolean reproduces(float[] w, int from, int group, float scale, int maxLevel, int[] levels) {
            for (int i = from; i < from + group; i++) {
                float q = (float) Math.rint(w[i] / scale);
                if (Math.abs(q) > maxLevel || q * scale != w[i]) {
                    return false;
                }
                levels[i] = (int) q;
            }
            return true;
        }
    }

    /**
     * compressed-tensors' {@code pack_to_int32}: each level shifted to unsigned ({@code + 2^(bits-1)}), rows padded
     * with 0 to a whole word, and the k-th value of a word in bits {@code k·bits}.
     */
    static int[] pack(int[] levels, int rows, int cols, int bits) {
        int perWord = 32 / bits;
        int words = (cols + perWord - 1) / perWord;
        int offset = 1 << (bits - 1);
        int[] packed = new int[rows * words];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                packed[r * words + c / perWord] |= (levels[r * cols + c] + offset) << (bits * (c % perWord));
            }
        }
        return packed;
    }

    /** numpy's {@code packbits(mask, axis=-1, bitorder="little")} per row, as compressed-tensors' pack_bitmasks. */
    static byte[] bitmask(boolean[] kept, int rows, int cols) {
        int bytes = (cols + 7) / 8;
        byte[] out = new byte[rows * bytes];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                if (kept[r * cols + c]) {
                    out[r * bytes + c / 8] |= (byte) (1 << (c % 8));
                }
            }
        }
        return out;
    }

    /**
     * Two positions of every group of 4 consecutive columns, covering every nonzero value: the nonzero ones, then the
     * first zero ones. The decompressed matrix is the same for any such choice.
     */
    private static boolean[] twoOfFour(String component, float[] w, int rows, int cols) {
        if (cols % 4 != 0) {
            throw new IllegalArgumentException(component + ": " + cols + " columns are not a multiple of 4");
        }
        boolean[] kept = new boolean[w.length];
        for (int g = 0; g < w.length; g += 4) {
            int count = 0;
            for (int i = g; i < g + 4; i++) {
                if (w[i] != 0) {
                    kept[i] = true;
                    count++;
                }
            }
            if (count > 2) {
                throw new IllegalStateException(component + ": row " + g / cols + " columns " + g % cols + ".."
                        + (g % cols + 3) + " hold " + count + " nonzero values, not a 2:4 pattern");
            }
            for (int i = g; i < g + 4 && count < 2; i++) {
                if (!kept[i]) {
                    kept[i] = true;
                    count++;
                }
            }
        }
        return kept;
    }

    /**
     * config.json's {@code quantization_config}, as compressed-tensors' {@code ModelCompressor.update_config} writes
     * it: one config group per distinct packed layout targeting its modules by name, every other linear module of
     * {@code linear} ignored, and a {@code sparse-24-bitmask} sparsity config targeting the 2:4 modules. Null when
     * nothing is stored compressed.
     *
     * @param linear      every linear module of the model, {@code lm_head} included
     * @param zeroShare   the 2:4 modules' zeros over all of {@code linear}'s parameters ({@code global_sparsity})
     */
    static ObjectNode config(ObjectMapper json, Plan plan, List<String> linear, double zeroShare) {
        if (!plan.quantizes() && !plan.sparse()) {
            return null;
        }
        ObjectNode q = json.createObjectNode();
        if (plan.quantizes()) {
            Map<Packed, List<String>> groups = new LinkedHashMap<>();
            plan.layouts().forEach((m, layout) -> {
                if (layout instanceof Packed p) {
                    groups.computeIfAbsent(p, x -> new ArrayList<>()).add(m);
                }
            });
            ObjectNode configGroups = q.putObject("config_groups");
            int index = 0;
            for (Map.Entry<Packed, List<String>> g : groups.entrySet()) {
                ObjectNode scheme = configGroups.putObject("group_" + index++);
                scheme.put("format", "pack-quantized");
                scheme.putNull("input_activations");
                scheme.putNull("output_activations");
                ArrayNode targets = scheme.putArray("targets");
                g.getValue().forEach(targets::add);
                ObjectNode weights = scheme.putObject("weights");
                Packed p = g.getKey();
                weights.putNull("actorder");
                weights.putNull("block_structure");
                weights.put("dynamic", false);
                if (p.group() == 0) {
                    weights.putNull("group_size");
                } else {
                    weights.put("group_size", p.group());
                }
                weights.put("num_bits", p.bits());
                weights.put("observer", "minmax");
                weights.putObject("observer_kwargs");
                weights.put("strategy", p.group() == 0 ? "channel" : "group");
                weights.put("symmetric", true);
                weights.put("type", "int");
            }
            q.put("format", "pack-quantized");
            q.putNull("global_compression_ratio");
            ArrayNode ignore = q.putArray("ignore");
            linear.stream().filter(m -> !(plan.layouts().get(m) instanceof Packed)).forEach(ignore::add);
            q.putNull("kv_cache_scheme");
        }
        q.put("quant_method", "compressed-tensors");
        if (plan.quantizes()) {
            q.put("quantization_status", "compressed");
        }
        ObjectNode sparsity = q.putObject("sparsity_config");
        if (plan.sparse()) {
            sparsity.put("format", "sparse-24-bitmask");
            sparsity.put("global_sparsity", zeroShare);
            sparsity.putArray("ignore");
            sparsity.put("sparsity_structure", "2:4");
            ArrayNode targets = sparsity.putArray("targets");
            plan.layouts().forEach((m, layout) -> {
                if (layout instanceof Sparse24) {
                    targets.add(m);
                }
            });
        }
        q.putObject("transform_config");
        q.put("version", VERSION);
        return q;
    }

    private static byte[] littleEndian(int[] values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(values);
        return b.array();
    }

    private static byte[] longs(long... values) {
        ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(values);
        return b.array();
    }
}
