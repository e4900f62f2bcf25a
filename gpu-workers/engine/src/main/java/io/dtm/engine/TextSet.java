package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.List;

/**
 * A text prepared for the perplexity side of LLM-KICK (dtm-spec "Text metrics"): each line one document, its tokens
 * with BOS cut into consecutive windows of at most W tokens (a last window shorter than 2 is dropped), each window one
 * sequence in which position j predicts token j + 1. Windows are batched, right-padded to W; each batch keeps the base
 * model's final normed hidden states at the predicting positions, so a schedule's KL to the base needs only the base
 * LM head again, not a second forward pass.
 */
public final class TextSet implements AutoCloseable {

    /**
     * One batch of windows: ids [B,W], causal mask [W,W], rotary tables, the predicting positions as flat rows [R] into
     * [B·W] with their next tokens [R], and the base model's final normed states there [R,D].
     */
    record Batch(NDManager owner, NDArray ids, NDArray mask, LlamaModel.Rope rope, NDArray rows, NDArray targets,
                 NDArray baseNormed) {
        void close() {
            owner.close();
        }
    }

    private final int window;
    private final int windows;
    private final long predicted;
    private final List<Batch> batches;

    TextSet(int window, int windows, long predicted, List<Batch> batches) {
        this.window = window;
        this.windows = windows;
        this.predicted = predicted;
        this.batches = List.copyOf(batches);
    }

    /** W, the most tokens a window holds. */
    public int window() {
        return window;
    }

    /** How many windows (sequences) the text was cut into. */
    public int windows() {
        return windows;
    }

    /** How many tokens are predicted: the positions every metric averages over. */
    public long predicted() {
        return predicted;
    }

    List<Batch> batches() {
        return batches;
    }

    @Override
    public void close() {
        batches.forEach(Batch::close);
    }
}
