package io.dtm.worker;

import io.dtm.engine.LlamaConfig;
import io.dtm.schemas.avro.ComponentTrial;
import java.util.List;

/**
 * What a trial may ask of a worker, checked against the model before anything is allocated for it: a trial that asks
 * for two billion tokens, or a prompt longer than the model's positions, is refused with its reason instead of
 * running the worker out of memory or scoring past the positions the model was trained on.
 */
final class TrialLimits {
    private TrialLimits() {}

    /** Refuses a token count that leaves no position for even a one-token prompt, before any prompt is encoded. */
    static void checkTokens(ComponentTrial t, LlamaConfig config) {
        if (t.getTokens() >= config.maxPositionEmbeddings()) {
            throw new IllegalArgumentException("trial " + t.getTrialId() + " asks for " + t.getTokens()
                    + " tokens, but the model has only " + config.maxPositionEmbeddings()
                    + " positions (max_position_embeddings) for prompt and continuation together");
        }
    }

    /**
     * Refuses a prompt that does not fit the model's positions with the trial's continuation, and a trial whose
     * forward batch would need more than {@code maxBatchBytes}.
     *
     * @param promptIds the shard's prompts, encoded
     * @param dtype     the engine's compute dtype ({@code float32} or {@code float16})
     */
    static void check(ComponentTrial t, List<int[]> promptIds, LlamaConfig config, String dtype, int batchSize,
                      long maxBatchBytes) {
        checkTokens(t, config);
        int longest = 0;
        for (int i = 0; i < promptIds.size(); i++) {
            int length = promptIds.get(i).length;
            long positions = (long) length + t.getTokens();
            if (positions > config.maxPositionEmbeddings()) {
                throw new IllegalArgumentException("prompt " + (t.getPromptOffset() + i) + " has " + length
                        + " tokens; with " + t.getTokens() + " generated tokens that is " + positions
                        + " positions, more than the model's max_position_embeddings " + config.maxPositionEmbeddings());
            }
            longest = Math.max(longest, length);
        }
        int batch = Math.min(batchSize, promptIds.size());
        int positions = longest + t.getTokens();
        long bytes = batchBytes(config, batch, positions, t.getTokens(), dtype.equals("float16") ? 2 : 4);
        if (bytes > maxBatchBytes) {
            throw new IllegalArgumentException("one forward batch of this trial (" + batch + " prompts x " + positions
                    + " positions) needs about " + (bytes >> 20) + " MB, more than the worker's limit of "
                    + (maxBatchBytes >> 20) + " MB (--max-trial-mb); lower --batch-size or raise --max-trial-mb");
        }
    }

    /**
     * An upper estimate of what one batch of B prompts padded to T positions holds at once, in values of the compute
     * dtype: a few hidden states ({@code 4·B·T·D}), one layer's projections ({@code B·T·(2·H + 2·K)·E}) and MLP
     * ({@code 3·B·T·F}), the attention scores and their softmax ({@code 2·B·H·T²}), the key/value cache of greedy
     * decoding ({@code 2·L·B·T·K·E}) and a chunk of LM-head logits (at most 512 rows of V). The layer cache is bounded
     * separately, by {@code --cache-mb}.
     */
    static long batchBytes(LlamaConfig c, int batch, int positions, int tokens, int bytesPerValue) {
        long b = batch;
        long t = positions;
        long e = c.headDim();
        long values = 4 * b * t * c.hiddenSize()
                + b * t * (2L * c.numHeads() + 2L * c.numKvHeads()) * e
                + 3 * b * t * c.intermediateSize()
                + 2 * b * c.numHeads() * t * t
                + 2L * c.numLayers() * b * t * c.numKvHeads() * e
                + Math.min(512, b * tokens) * c.vocabSize();
        return values * bytesPerValue;
    }
}
