package io.dtm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The hyper-parameters of a Hugging Face Llama-family checkpoint, mapped from its {@code config.json}.
 *
 * <p>Rope theta may sit at the top level (older files) or under {@code rope_parameters} (newer transformers); only the
 * default rope type is supported, because a scaled rope silently computed as the default would give wrong tokens.
 */
public record LlamaConfig(
        String architecture,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int vocabSize,
        float rmsNormEps,
        double ropeTheta,
        boolean tieWordEmbeddings,
        boolean attentionBias,
        boolean mlpBias,
        int bosTokenId,
        int eosTokenId,
        int maxPositionEmbeddings) {

    private static final List<String> SUPPORTED = List.of("LlamaForCausalLM", "MistralForCausalLM");

    /** The linear weight matrices of one decoder layer, in the order the spec lists them. */
    public static final List<String> LAYER_COMPONENTS = List.of(
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");

    public LlamaConfig {
        if (!SUPPORTED.contains(architecture)) {
            throw new IllegalArgumentException("unsupported architecture '" + architecture + "' (supported: " + SUPPORTED + ")");
        }
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numLayers);
        positive("num_attention_heads", numHeads);
        positive("num_key_value_heads", numKvHeads);
        positive("head_dim", headDim);
        positive("vocab_size", vocabSize);
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + numHeads
                    + " is not a multiple of num_key_value_heads " + numKvHeads);
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim " + headDim + " must be even for rotary embeddings");
        }
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (!(rmsNormEps > 0) || !(ropeTheta > 0)) {
            throw new IllegalArgumentException("rms_norm_eps and rope_theta must be positive");
        }
    }

    private static void positive(String name, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException("config.json: " + name + " must be positive, got " + value);
        }
    }

    public static LlamaConfig read(Path modelDir) throws IOException {
        Path file = modelDir.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            throw new java.io.FileNotFoundException("model directory " + modelDir + " has no config.json");
        }
        JsonNode c = new ObjectMapper().readTree(file.toFile());
        String arch = c.path("architectures").path(0).asText(c.path("model_type").asText("?"));
        if (arch.equals("llama")) {
            arch = "LlamaForCausalLM";
        }
        int hidden = c.path("hidden_size").asInt();
        int heads = c.path("num_attention_heads").asInt();
        JsonNode rope = c.path("rope_parameters").isObject() ? c.path("rope_parameters") : c.path("rope_scaling");
        String ropeType = rope.isObject() ? rope.path("rope_type").asText(rope.path("type").asText("default")) : "default";
        if (!ropeType.equals("default")) {
            throw new IllegalArgumentException("config.json: unsupported rope_type '" + ropeType + "' (only 'default')");
        }
        double theta = c.has("rope_theta") ? c.path("rope_theta").asDouble() : rope.path("rope_theta").asDouble(10000.0);
        return new LlamaConfig(arch, hidden, c.path("intermediate_size").asInt(), c.path("num_hidden_layers").asInt(),
                heads, c.path("num_key_value_heads").asInt(heads),
                c.hasNonNull("head_dim") ? c.path("head_dim").asInt() : (heads > 0 ? hidden / heads : 0),
                c.path("vocab_size").asInt(), (float) c.path("rms_norm_eps").asDouble(1e-6), theta,
                c.path("tie_word_embeddings").asBoolean(false), c.path("attention_bias").asBoolean(false),
                c.path("mlp_bias").asBoolean(false), c.path("bos_token_id").asInt(1), firstInt(c.path("eos_token_id"), 2),
                // transformers' LlamaConfig default when the file does not say
                c.path("max_position_embeddings").asInt(2048));
    }

    private static int firstInt(JsonNode node, int fallback) {
        return node.isArray() ? node.path(0).asInt(fallback) : node.asInt(fallback);
    }

    public int kvGroups() {
        return numHeads / numKvHeads;
    }

    /** All component names of the model: {@code model.layers.{l}.self_attn.q_proj} ... in layer order. */
    public List<String> componentNames() {
        List<String> names = new ArrayList<>();
        for (int l = 0; l < numLayers; l++) {
            for (String c : LAYER_COMPONENTS) {
                names.add(componentName(l, c));
            }
        }
        return names;
    }

    public static String componentName(int layer, String localName) {
        return "model.layers." + layer + "." + localName;
    }

    /** Parameter count of a component named in full, e.g. {@code model.layers.3.mlp.up_proj}. */
    public long parameters(String component) {
        long[] shape = shapeOf(component);
        return shape[0] * shape[1];
    }

    /** The weight shape {@code [out, in]} of a component named in full. */
    public long[] shapeOf(String component) {
        if (!component.startsWith("model.layers.") || component.indexOf('.', "model.layers.".length()) < 0) {
            throw new IllegalArgumentException("unknown component '" + component + "'");
        }
        return componentShape(component.substring(component.indexOf('.', "model.layers.".length()) + 1));
    }

    /** The weight shape {@code [out, in]} of a component. */
    public long[] componentShape(String localName) {
        long q = (long) numHeads * headDim;
        long kv = (long) numKvHeads * headDim;
        return switch (localName) {
            case "self_attn.q_proj" -> new long[] {q, hiddenSize};
            case "self_attn.k_proj", "self_attn.v_proj" -> new long[] {kv, hiddenSize};
            case "self_attn.o_proj" -> new long[] {hiddenSize, q};
            case "mlp.gate_proj", "mlp.up_proj" -> new long[] {intermediateSize, hiddenSize};
            case "mlp.down_proj" -> new long[] {hiddenSize, intermediateSize};
            default -> throw new IllegalArgumentException("unknown component '" + localName + "'");
        };
    }
}
