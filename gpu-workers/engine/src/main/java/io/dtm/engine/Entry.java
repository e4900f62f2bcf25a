package io.dtm.engine;

import java.util.HashSet;
import java.util.Set;

/**
 * Where a trial's forward pass starts. Nothing changes before a trial's first compressed matrix, so it starts from the
 * base model's cached state there: at a layer's input, at its mid-layer state when only MLP matrices change in that
 * layer, at the final state when only the LM head changes, or from the embeddings when nothing cached can be used.
 */
sealed interface Entry {

    /** From the token embeddings: the cache is off, or the embeddings themselves change. */
    record Embeddings() implements Entry {}

    /**
     * At the cached input of {@code layer}; {@code changed} are the matrices compressed in it (local names such as
     * {@code self_attn.o_proj}), so the base intermediates of the others may be reused.
     */
    record LayerInput(int layer, Set<String> changed) implements Entry {}

    /** At the cached state after {@code layer}'s attention half: only its MLP matrices ({@code changed}) change there. */
    record MidLayer(int layer, Set<String> changed) implements Entry {}

    /** At the cached final hidden state: only the LM head changes. */
    record FinalState() implements Entry {}

    Entry EMBEDDINGS = new Embeddings();

    /**
     * The latest entry a trial changing {@code components} can use with a cache that keeps every {@code stride}-th
     * layer input (stride 1: every layer input, mid-layer state and the final state; 0: nothing).
     */
    static Entry of(Set<String> components, int layers, int stride) {
        if (stride == 0 || components.contains(ModelWeights.EMBED)) {
            return EMBEDDINGS;
        }
        int first = components.stream().filter(c -> !c.equals(ModelWeights.LM_HEAD))
                .mapToInt(ModelWeights::layerOf).min().orElse(layers);
        if (stride == 1 && first == layers) {
            return new FinalState();
        }
        // with a stride only every stride-th layer input is cached (the final state not): start at the nearest below
        int layer = stride == 1 ? first : Math.min(first, layers - 1) / stride * stride;
        Set<String> changed = new HashSet<>();
        for (String c : components) {
            if (!c.equals(ModelWeights.LM_HEAD) && ModelWeights.layerOf(c) == layer) {
                changed.add(c.substring(c.indexOf('.', "model.layers.".length()) + 1));
            }
        }
        boolean mlpOnly = !changed.isEmpty() && changed.stream().allMatch(local -> local.startsWith("mlp."));
        return stride == 1 && mlpOnly ? new MidLayer(layer, Set.copyOf(changed))
                : new LayerInput(layer, Set.copyOf(changed));
    }
}
