package io.dtm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaConfigTest {

    @TempDir
    Path dir;

    private int written;

    /** A Llama config with GQA and an explicit head_dim that differs from hidden/heads, edited by {@code edit}. */
    private Path config(Consumer<ObjectNode> edit) throws IOException {
        ObjectNode c = TestData.JSON.createObjectNode();
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("model_type", "llama");
        c.put("hidden_size", 64);
        c.put("intermediate_size", 176);
        c.put("num_hidden_layers", 3);
        c.put("num_attention_heads", 8);
        c.put("num_key_value_heads", 2);
        c.put("head_dim", 16);
        c.put("vocab_size", 1000);
        c.put("rms_norm_eps", 1e-5);
        c.put("bos_token_id", 0);
        c.put("eos_token_id", 1);
        c.put("tie_word_embeddings", false);
        c.putObject("rope_parameters").put("rope_theta", 10000.0).put("rope_type", "default");
        edit.accept(c);
        Path d = Files.createDirectories(dir.resolve("model" + written++));
        TestData.JSON.writeValue(d.resolve("config.json").toFile(), c);
        return d;
    }

    @Test
    void readsTheSharedTinyModel() throws IOException {
        LlamaConfig c = LlamaConfig.read(TestData.tinyDir());
        assertEquals("LlamaForCausalLM", c.architecture());
        assertEquals(64, c.hiddenSize());
        assertEquals(176, c.intermediateSize());
        assertEquals(2, c.numLayers());
        assertEquals(4, c.numHeads());
        assertEquals(2, c.numKvHeads());
        assertEquals(16, c.headDim());
        assertEquals(4096, c.vocabSize());
        assertEquals(1e-5f, c.rmsNormEps());
        assertEquals(10000.0, c.ropeTheta());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(0, c.bosTokenId());
        assertEquals(1, c.eosTokenId());
        assertEquals(2, c.kvGroups());
        LlamaConfig brown = LlamaConfig.read(TestData.brownDir());
        assertEquals(8, brown.numLayers());
        assertEquals(56, brown.componentNames().size());
    }

    @Test
    void ropeThetaAtTopLevelOrUnderRopeParameters() throws IOException {
        LlamaConfig nested = LlamaConfig.read(config(c -> c.putObject("rope_parameters")
                .put("rope_theta", 1234.5).put("rope_type", "default")));
        assertEquals(1234.5, nested.ropeTheta());

        LlamaConfig top = LlamaConfig.read(config(c -> {
            c.remove("rope_parameters");
            c.put("rope_theta", 500000.0);
            c.putNull("rope_scaling");
        }));
        assertEquals(500000.0, top.ropeTheta());

        LlamaConfig none = LlamaConfig.read(config(c -> c.remove("rope_parameters")));
        assertEquals(10000.0, none.ropeTheta(), "transformers' default theta");
    }

    @Test
    void unsupportedRopeTypeIsNamed() throws IOException {
        Path llama3 = config(c -> c.putObject("rope_parameters").put("rope_theta", 500000.0).put("rope_type", "llama3")
                .put("factor", 8.0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.read(llama3));
        assertTrue(e.getMessage().contains("llama3"), e.getMessage());

        // the older spelling: rope_scaling with "type"
        Path linear = config(c -> {
            c.remove("rope_parameters");
            c.putObject("rope_scaling").put("type", "linear").put("factor", 2.0);
        });
        IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.read(linear));
        assertTrue(e2.getMessage().contains("linear"), e2.getMessage());
    }

    @Test
    void missingKvHeadsMeansMultiHeadAttention() throws IOException {
        LlamaConfig c = LlamaConfig.read(config(n -> n.remove("num_key_value_heads")));
        assertEquals(8, c.numKvHeads());
        assertEquals(1, c.kvGroups());
        assertArrayEquals(new long[] {128, 64}, c.componentShape("self_attn.k_proj"));
    }

    @Test
    void headDimDefaultsToHiddenOverHeads() throws IOException {
        LlamaConfig c = LlamaConfig.read(config(n -> n.remove("head_dim")));
        assertEquals(8, c.headDim());
        assertArrayEquals(new long[] {64, 64}, c.componentShape("self_attn.q_proj"));
        assertArrayEquals(new long[] {16, 64}, c.componentShape("self_attn.v_proj"));
    }

    @Test
    void modelTypeLlamaAndEosListAreAccepted() throws IOException {
        LlamaConfig c = LlamaConfig.read(config(n -> {
            n.remove("architectures");
            n.putArray("eos_token_id").add(7).add(9);
        }));
        assertEquals("LlamaForCausalLM", c.architecture());
        assertEquals(7, c.eosTokenId());
    }

    @Test
    void unsupportedArchitectureIsNamed() throws IOException {
        Path gpt2 = config(c -> c.putArray("architectures").add("GPT2LMHeadModel"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.read(gpt2));
        assertTrue(e.getMessage().contains("GPT2LMHeadModel"), e.getMessage());
    }

    @Test
    void invalidDimensionsAreNamed() throws IOException {
        Path badGroups = config(c -> c.put("num_key_value_heads", 3));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.read(badGroups));
        assertTrue(e.getMessage().contains("num_key_value_heads"), e.getMessage());
        Path noLayers = config(c -> c.remove("num_hidden_layers"));
        IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.read(noLayers));
        assertTrue(e2.getMessage().contains("num_hidden_layers"), e2.getMessage());
    }

    @Test
    void missingConfigNamesTheDirectory() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("no-config"));
        FileNotFoundException e = assertThrows(FileNotFoundException.class, () -> LlamaConfig.read(empty));
        assertTrue(e.getMessage().contains(empty.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
    }

    @Test
    void componentNamesAndShapes() throws IOException {
        LlamaConfig c = LlamaConfig.read(config(n -> {}));
        List<String> names = c.componentNames();
        assertEquals(3 * 7, names.size());
        assertEquals(List.of(
                "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj",
                "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
                "model.layers.0.mlp.down_proj"), names.subList(0, 7));
        assertEquals("model.layers.2.mlp.down_proj", names.get(20));
        assertEquals("model.layers.1.self_attn.q_proj", names.get(7));
        assertEquals(names.size(), names.stream().distinct().count());
        // 8 query heads, 2 kv heads, head_dim 16, hidden 64
        assertArrayEquals(new long[] {128, 64}, c.componentShape("self_attn.q_proj"));
        assertArrayEquals(new long[] {32, 64}, c.componentShape("self_attn.k_proj"));
        assertArrayEquals(new long[] {32, 64}, c.componentShape("self_attn.v_proj"));
        assertArrayEquals(new long[] {64, 128}, c.componentShape("self_attn.o_proj"));
        assertArrayEquals(new long[] {176, 64}, c.componentShape("mlp.gate_proj"));
        assertArrayEquals(new long[] {176, 64}, c.componentShape("mlp.up_proj"));
        assertArrayEquals(new long[] {64, 176}, c.componentShape("mlp.down_proj"));
        assertEquals(4, c.kvGroups());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> c.componentShape("input_layernorm"));
        assertTrue(e.getMessage().contains("input_layernorm"), e.getMessage());
    }
}
