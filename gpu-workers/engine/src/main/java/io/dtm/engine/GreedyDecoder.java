package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import java.util.List;

/**
 * Token-by-token greedy decoding with a KV cache, prompts batched and left-padded: how the base continuations are
 * generated, and the baseline a generation-based tool uses to score a trial.
 */
final class GreedyDecoder {

    private final LoadedModel m;

    GreedyDecoder(LoadedModel m) {
        this.m = m;
    }

    /**
     * Decodes {@code n} tokens per prompt with weights {@code w}; {@code forced} (if not null) is fed instead of the
     * model's own choice, so every position sees the same context as a teacher-forced pass.
     */
    int[][] decode(ModelWeights w, List<int[]> promptIds, int n, int[][] forced, DivergenceEngine.Progress progress) {
        for (int p = 0; p < promptIds.size(); p++) {
            m.checkLength(p, promptIds.get(p).length, n);
        }
        int[][] out = new int[promptIds.size()][n];
        for (int first = 0; first < promptIds.size(); first += m.options().batchSize()) {
            int size = Math.min(m.options().batchSize(), promptIds.size() - first);
            int width = 0;
            for (int b = 0; b < size; b++) {
                width = Math.max(width, promptIds.get(first + b).length);
            }
            int[] pad = new int[size];
            long[] ids = new long[size * width];
            long[] positions = new long[size * width];
            float[] mask = new float[size * width * width];
            for (int b = 0; b < size; b++) {
                int[] prompt = promptIds.get(first + b);
                pad[b] = width - prompt.length;
                for (int j = 0; j < width; j++) {
                    ids[b * width + j] = j < pad[b] ? 0 : prompt[j - pad[b]];
                    positions[b * width + j] = Math.max(0, j - pad[b]);
                    for (int k = 0; k < width; k++) {
                        boolean visible = k <= j && k >= pad[b];
                        mask[(b * width + j) * width + k] = visible ? 0f : m.model().maskValue();
                    }
                }
            }
            try (KvCache cache = new KvCache(m.manager(), m.config().numLayers())) {
                int[] next = step(w, cache, ids, positions, mask, size, width, width);
                for (int step = 0; ; step++) {
                    for (int b = 0; b < size; b++) {
                        out[first + b][step] = next[b];
                    }
                    progress.update("decoding", first * n + size * (step + 1), promptIds.size() * n);
                    if (step == n - 1) {
                        break;
                    }
                    int keys = width + step + 1;
                    long[] stepIds = new long[size];
                    long[] stepPositions = new long[size];
                    float[] stepMask = new float[size * keys];
                    for (int b = 0; b < size; b++) {
                        stepIds[b] = forced != null ? forced[first + b][step] : next[b];
                        stepPositions[b] = promptIds.get(first + b).length + step;
                        for (int k = 0; k < pad[b]; k++) {
                            stepMask[b * keys + k] = m.model().maskValue();
                        }
                    }
                    next = step(w, cache, stepIds, stepPositions, stepMask, size, 1, keys);
                }
            }
        }
        return out;
    }

    /** One step over {@code t} new positions per row: returns the greedy token after each row's last one. */
    private int[] step(ModelWeights w, KvCache cache, long[] ids, long[] positions, float[] mask, int b, int t, int s) {
        try (NDScope scope = new NDScope()) {
            NDArray idArray = m.manager().create(ids, new Shape(b, t));                          // [B,T]
            LlamaModel.Rope rope = m.model().rope(m.manager().create(positions, new Shape(b, t))); // [B,1,T,E]
            NDArray maskArray = m.model().mask(m.manager(), mask, new Shape(b, 1, 1, t, s));      // [B,1,1,T,S]
            NDArray x = m.model().layers(w, m.model().embed(w, idArray), 0, m.config().numLayers(),
                    LlamaModel.Pass.decoding(rope, maskArray, cache));                           // [B,T,D]
            NDArray last = x.get(":, -1, :");                                                    // [B,D]
            return LoadedModel.toInts(m.model().argmaxTokens(w.lmHead(), m.model().finalNorm(w, last))); // [B]
        }
    }
}
