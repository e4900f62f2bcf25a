package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.io.IOException;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Every tensor a Llama forward pass needs, by role: token embeddings [V,D], the decoder layers, the final norm [D] and
 * the LM head [V,D] (the embeddings themselves when the checkpoint ties them). The base model's set is loaded once; a
 * trial sees it through {@link #with}, a copy that swaps in its compressed matrices and leaves the base untouched.
 */
record ModelWeights(NDArray embed, List<LayerWeights> layers, NDArray norm, NDArray lmHead) {

    static final String EMBED = "model.embed_tokens";
    static final String LM_HEAD = "lm_head";

    /** Loads tensor by tensor, each checked against the config's shape, straight into {@code dtype} on the device. */
    static ModelWeights load(Checkpoint ckpt, LlamaConfig c, NDManager manager, DataType dtype) throws IOException {
        NDArray embed = ckpt.load(EMBED + ".weight", manager, dtype, c.vocabSize(), c.hiddenSize());
        NDArray norm = ckpt.load("model.norm.weight", manager, dtype, c.hiddenSize());
        NDArray head = c.tieWordEmbeddings() && !ckpt.has(LM_HEAD + ".weight") ? embed
                : ckpt.load(LM_HEAD + ".weight", manager, dtype, c.vocabSize(), c.hiddenSize());
        List<LayerWeights> layers = new ArrayList<>();
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            NDArray inputNorm = ckpt.load(p + "input_layernorm.weight", manager, dtype, c.hiddenSize());
            NDArray postNorm = ckpt.load(p + "post_attention_layernorm.weight", manager, dtype, c.hiddenSize());
            LayerWeights.Linear[] linears = new LayerWeights.Linear[LlamaConfig.LAYER_COMPONENTS.size()];
            for (int i = 0; i < linears.length; i++) {
                String local = LlamaConfig.LAYER_COMPONENTS.get(i);
                long[] shape = c.componentShape(local);
                boolean hasBias = local.startsWith("self_attn") ? c.attentionBias() : c.mlpBias();
                linears[i] = new LayerWeights.Linear(ckpt.load(p + local + ".weight", manager, dtype, shape),
                        hasBias ? ckpt.load(p + local + ".bias", manager, dtype, shape[0]) : null);
            }
            layers.add(new LayerWeights(inputNorm, linears[0], linears[1], linears[2], linears[3], postNorm,
                    linears[4], linears[5], linears[6]));
        }
        return new ModelWeights(embed, List.copyOf(layers), norm, head);
    }

    boolean tied() {
        return lmHead == embed;
    }

    /** The weight matrix of a component: {@code model.layers.{l}.{self_attn|mlp}.*_proj}, {@code lm_head} or {@code model.embed_tokens}. */
    NDArray component(String name) {
        return switch (name) {
            case EMBED -> embed;
            case LM_HEAD -> lmHead;
            default -> layers.get(layerOf(name)).component(localName(name)).weight();
        };
    }

    /**
     * These weights with some components' matrices replaced (by component name). With tied embeddings one matrix
     * serves both roles, so replacing it under either name changes both.
     */
    ModelWeights with(Map<String, NDArray> replaced) {
        if (replaced.isEmpty()) {
            return this;
        }
        NDArray e = embed;
        NDArray h = lmHead;
        List<LayerWeights> ls = new ArrayList<>(layers);
        for (Map.Entry<String, NDArray> r : replaced.entrySet()) {
            switch (r.getKey()) {
                case EMBED -> {
                    e = r.getValue();
                    h = tied() ? e : h;
                }
                case LM_HEAD -> {
                    h = r.getValue();
                    e = tied() ? h : e;
                }
                default -> {
                    int l = layerOf(r.getKey());
                    ls.set(l, ls.get(l).with(localName(r.getKey()), r.getValue()));
                }
            }
        }
        return new ModelWeights(e, List.copyOf(ls), norm, h);
    }

    /** Every distinct tensor (the tied head once). */
    Set<NDArray> tensors() {
        Set<NDArray> all = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        all.add(embed);
        all.add(norm);
        all.add(lmHead);
        for (LayerWeights l : layers) {
            all.add(l.inputNorm());
            all.add(l.postNorm());
            for (String local : LlamaConfig.LAYER_COMPONENTS) {
                all.add(l.component(local).weight());
                if (l.component(local).bias() != null) {
                    all.add(l.component(local).bias());
                }
            }
        }
        return all;
    }

    /** The layer of {@code model.layers.{l}.…}. */
    static int layerOf(String component) {
        String rest = component.substring("model.layers.".length());
        return Integer.parseInt(rest.substring(0, rest.indexOf('.')));
    }

    private static String localName(String component) {
        return component.substring(component.indexOf('.', "model.layers.".length()) + 1);
    }
}
