package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

/**
 * Every tensor a Llama forward pass needs, loaded once by name from the checkpoint, shape-checked against the config,
 * and kept on the engine's device in the compute dtype.
 */
final class LlamaWeights implements Weights {

    private final Map<String, NDArray> tensors = new HashMap<>();

    private LlamaWeights() {}

    static LlamaWeights load(ModelFiles files, LlamaConfig c, NDManager manager, DataType dtype) throws IOException {
        LlamaWeights w = new LlamaWeights();
        try (Checkpoint ckpt = new Checkpoint(files)) {
            w.put(manager, dtype, ckpt, "model.embed_tokens.weight", c.vocabSize(), c.hiddenSize());
            w.put(manager, dtype, ckpt, "model.norm.weight", c.hiddenSize());
            if (c.tieWordEmbeddings() && !ckpt.has("lm_head.weight")) {
                w.tensors.put("lm_head.weight", w.tensors.get("model.embed_tokens.weight"));
            } else {
                w.put(manager, dtype, ckpt, "lm_head.weight", c.vocabSize(), c.hiddenSize());
            }
            for (int l = 0; l < c.numLayers(); l++) {
                String p = "model.layers." + l + ".";
                w.put(manager, dtype, ckpt, p + "input_layernorm.weight", c.hiddenSize());
                w.put(manager, dtype, ckpt, p + "post_attention_layernorm.weight", c.hiddenSize());
                for (String local : LlamaConfig.LAYER_COMPONENTS) {
                    long[] shape = c.componentShape(local);
                    w.put(manager, dtype, ckpt, p + local + ".weight", shape);
                    boolean hasBias = local.startsWith("self_attn") ? c.attentionBias() : c.mlpBias();
                    if (hasBias) {
                        w.put(manager, dtype, ckpt, p + local + ".bias", shape[0]);
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            w.tensors.values().forEach(NDArray::close);
            throw e;
        }
        return w;
    }

    private void put(NDManager manager, DataType dtype, Checkpoint ckpt, String name, long... shape) throws IOException {
        NDArray a = manager.create(ckpt.read(name, shape), new Shape(shape));
        if (dtype != DataType.FLOAT32) {
            NDArray cast = a.toType(dtype, false);
            a.close();
            a = cast;
        }
        a.setName(name);
        tensors.put(name, a);
    }

    @Override
    public NDArray get(String name) {
        return tensors.get(name);
    }

    /** The named tensor required to exist (a component's weight). */
    NDArray require(String name) {
        NDArray a = tensors.get(name);
        if (a == null) {
            throw new IllegalArgumentException("unknown tensor '" + name + "'");
        }
        return a;
    }

    /** Total number of floats held, for memory accounting. */
    long numel() {
        return tensors.values().stream().distinct().mapToLong(a -> a.getShape().size()).sum();
    }
}
