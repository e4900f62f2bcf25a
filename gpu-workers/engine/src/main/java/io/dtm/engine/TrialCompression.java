package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import io.dtm.schemas.CompressionSpec;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * A trial's model: the base weights with its compressed matrices swapped in, made on the weights' device in a manager
 * of the trial's own that frees them all when the trial ends.
 *
 * <p>A compression weighted by activations (Wanda) uses the input norms of its matrix under "the base model plus the
 * schedule's other compressions" (dtm-spec): the model with every compression that needs no activations applied. All
 * activation-weighted matrices are calibrated on that one model and compressed at once (one shot, as the golden files
 * were made: an all-Wanda schedule there matches only so). Where no such compression feeds a matrix's input, the base
 * norms the prompt set collected in its reference pass serve as they are; otherwise one pass over the set, from the
 * nearest cached layer input up to the last such matrix's layer, collects them.
 */
final class TrialCompression {

    private TrialCompression() {}

    static <T> T apply(LoadedModel m, Trial trial, PromptSet set, PhaseClock clock, Function<ModelWeights, T> body) {
        try (NDManager owner = m.manager().newSubManager()) {
            Map<String, NDArray> compressed = new HashMap<>();
            for (Map.Entry<String, CompressionSpec> change : trial.changes().entrySet()) {
                if (!change.getValue().needsActivations()) {
                    compressed.put(change.getKey(), compress(m, change.getKey(), change.getValue(), null, owner, clock));
                }
            }
            List<String> weighted = trial.changes().entrySet().stream().filter(e -> e.getValue().needsActivations())
                    .map(Map.Entry::getKey).toList();
            if (!weighted.isEmpty()) {
                if (set == null) {
                    throw new IllegalArgumentException(trial.changes().get(weighted.get(0)) + " on " + weighted.get(0)
                            + " weighs by activations: it needs a prompt set (score the trial over one)");
                }
                weighted.forEach(TrialCompression::layer);
                try (NDScope scope = new NDScope()) {
                    ModelWeights calibration = m.weights().with(compressed);
                    Set<InputNorms.Key> fed = weighted.stream().filter(c -> fedByACompression(c, compressed.keySet()))
                            .map(InputNorms.Key::of).collect(Collectors.toSet());
                    try (InputNorms norms = fed.isEmpty() ? null : norms(m, set, calibration, fed)) {
                        for (String c : weighted) {
                            InputNorms.Key key = InputNorms.Key.of(c);
                            NDArray n = fed.contains(key) ? norms.norms(key) : set.baseNorms().norms(key);
                            compressed.put(c, compress(m, c, trial.changes().get(c), n, owner, clock));
                        }
                    }
                }
            }
            return body.apply(m.weights().with(compressed));
        }
    }

    private static NDArray compress(LoadedModel m, String component, CompressionSpec spec, NDArray norms,
                                    NDManager owner, PhaseClock clock) {
        NDArray base = m.weights().component(component);
        try (NDScope scope = new NDScope()) {
            NDArray c = LoadedModel.keep(Compressor.of(spec, m.scalars()).apply(base, norms), owner);
            clock.end("compress", c);
            return c;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(component + ": " + e.getMessage(), e);
        }
    }

    /** A decoder layer's component's layer; activation-weighted compressions apply to those only. */
    private static int layer(String component) {
        if (!component.startsWith("model.layers.")) {
            throw new IllegalArgumentException("activation-weighted compressions apply to the decoder's linear"
                    + " components, not " + component);
        }
        return ModelWeights.layerOf(component);
    }

    /** Whether one of {@code compressed} (the compressions applied for calibration) feeds {@code component}'s input. */
    private static boolean fedByACompression(String component, Set<String> compressed) {
        InputNorms.Key target = InputNorms.Key.of(component);
        for (String other : compressed) {
            if (other.equals(ModelWeights.LM_HEAD)) {
                continue;
            }
            if (other.equals(ModelWeights.EMBED)) {
                return true;
            }
            InputNorms.Key k = InputNorms.Key.of(other);
            if (k.layer() < target.layer() || (k.layer() == target.layer() && k.site().compareTo(target.site()) < 0)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The input norms at {@code keys} under weights {@code w}: one pass over every batch from the nearest cached base
     * layer input below the first change (or the embeddings) up to the last key's layer, every position computed.
     */
    private static InputNorms norms(LoadedModel m, PromptSet set, ModelWeights w, Set<InputNorms.Key> keys) {
        int last = keys.stream().mapToInt(InputNorms.Key::layer).max().orElseThrow();
        int stride = set.cacheStride();
        InputNorms norms = new InputNorms(m.manager());
        try {
            for (PromptSet.Batch batch : set.batches()) {
                try (NDScope scope = new NDScope()) {
                    boolean fromEmbeddings = stride == 0 || w.embed() != m.weights().embed();
                    int from = fromEmbeddings ? 0 : firstChange(m, w, last) / stride * stride;
                    NDArray x = fromEmbeddings ? m.model().embed(w, batch.ids()) : batch.inputs()[from];
                    m.model().layers(w, x, from, last + 1, LlamaModel.Pass.of(batch.rope(), batch.mask())
                            .tapped(norms.tap(batch.valid(), keys::contains, LlamaModel.Tap.NONE)));
                }
            }
            return norms;
        } catch (RuntimeException e) {
            norms.close();
            throw e;
        }
    }

    /** The first layer at or below {@code limit} whose weights differ from the base model's. */
    private static int firstChange(LoadedModel m, ModelWeights w, int limit) {
        for (int l = 0; l < limit; l++) {
            if (w.layers().get(l) != m.weights().layers().get(l)) {
                return l;
            }
        }
        return limit;
    }
}
