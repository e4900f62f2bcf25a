package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.dtm.schemas.TextScore;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The perplexity side of LLM-KICK (dtm-spec "Text metrics"): perplexity, KL to the base model and top-1 agreement of a
 * schedule on a text, each window one full teacher-forced pass from the embeddings.
 */
final class TextMetrics {

    /** Rows per LM-head chunk: the [r,V] float32 logits of both models and their log-softmaxes stay small. */
    private static final long HEAD_ROWS = 512;

    private final LoadedModel m;

    TextMetrics(LoadedModel m) {
        this.m = m;
    }

    /** Cuts tokenized documents into windows of at most {@code window} tokens and runs the base model over them. */
    TextSet prepare(List<int[]> documents, int window) {
        if (window < 2) {
            throw new IllegalArgumentException("the window must hold at least 2 tokens, got " + window);
        }
        if (window > m.config().maxPositionEmbeddings()) {
            throw new IllegalArgumentException("window " + window + " is past the model's max_position_embeddings of "
                    + m.config().maxPositionEmbeddings());
        }
        List<int[]> windows = new ArrayList<>();
        for (int[] ids : documents) {
            for (int start = 0; start < ids.length; start += window) {
                int end = Math.min(ids.length, start + window);
                if (end - start >= 2) {
                    windows.add(java.util.Arrays.copyOfRange(ids, start, end));
                }
            }
        }
        if (windows.isEmpty()) {
            throw new IllegalArgumentException("the text has no line of at least 2 tokens: nothing to score");
        }
        List<TextSet.Batch> batches = new ArrayList<>();
        long predicted = 0;
        try {
            for (int first = 0; first < windows.size(); first += m.options().batchSize()) {
                List<int[]> part = windows.subList(first, Math.min(windows.size(), first + m.options().batchSize()));
                batches.add(batch(part, window));
                predicted += part.stream().mapToLong(w -> w.length - 1).sum();
            }
        } catch (RuntimeException e) {
            batches.forEach(TextSet.Batch::close);
            throw e;
        }
        return new TextSet(window, windows.size(), predicted, batches);
    }

    private TextSet.Batch batch(List<int[]> windows, int window) {
        int b = windows.size();
        long[] ids = new long[b * window];
        List<Long> rows = new ArrayList<>();
        List<Long> targets = new ArrayList<>();
        for (int i = 0; i < b; i++) {
            int[] w = windows.get(i);
            for (int j = 0; j < w.length; j++) {
                ids[i * window + j] = w[j];
                if (j + 1 < w.length) {
                    rows.add((long) i * window + j);
                    targets.add((long) w[j + 1]);
                }
            }
        }
        float[] mask = new float[window * window];
        for (int q = 0; q < window; q++) {
            for (int k = q + 1; k < window; k++) {
                mask[q * window + k] = m.model().maskValue();
            }
        }
        NDManager owner = m.manager().newSubManager();
        try (NDScope scope = new NDScope()) {
            NDArray idArray = LoadedModel.keep(m.manager().create(ids, new Shape(b, window)), owner);          // [B,W]
            NDArray maskArray = LoadedModel.keep(m.model().mask(m.manager(), mask, new Shape(window, window)), owner);
            LlamaModel.Rope r = m.model().rope(m.manager().arange(0, window, 1, DataType.INT64).reshape(1, window));
            LlamaModel.Rope rope = new LlamaModel.Rope(LoadedModel.keep(r.cos(), owner), LoadedModel.keep(r.sin(), owner));
            NDArray rowArray = LoadedModel.keep(m.manager().create(rows.stream().mapToLong(Long::longValue).toArray()), owner);
            NDArray targetArray = LoadedModel.keep(
                    m.manager().create(targets.stream().mapToLong(Long::longValue).toArray()), owner);          // [R]
            TextSet.Batch batch = new TextSet.Batch(owner, idArray, maskArray, rope, rowArray, targetArray, null);
            NDArray normed = normedRows(batch, m.weights());                                                    // [R,D]
            if (LlamaModel.nonFinite(normed).getBoolean()) {
                throw new IllegalStateException("non-finite hidden states in the base model over the text");
            }
            return new TextSet.Batch(owner, idArray, maskArray, rope, rowArray, targetArray,
                    LoadedModel.keep(normed, owner));
        } catch (RuntimeException e) {
            owner.close();
            throw e;
        }
    }

    /** The final normed hidden states of a batch's predicting positions under {@code w}: [R,D]. */
    private NDArray normedRows(TextSet.Batch batch, ModelWeights w) {
        NDArray x = m.model().layers(w, m.model().embed(w, batch.ids()), 0, m.config().numLayers(),
                LlamaModel.Pass.of(batch.rope(), batch.mask()));                                  // [B,W,D]
        return m.model().finalNorm(w, x.reshape(-1, m.config().hiddenSize()).get(batch.rows()));  // [R,D]
    }

    /** The text metrics of weights {@code w}: per-position values in float32 on the device, summed here in float64. */
    TextScore score(TextSet set, ModelWeights w) {
        double nll = 0;
        double kl = 0;
        long agreed = 0;
        for (TextSet.Batch batch : set.batches()) {
            try (NDScope scope = new NDScope()) {
                NDArray h = normedRows(batch, w);                                                  // [R,D]
                long rows = h.getShape().get(0);
                NDList perRow = new NDList();
                for (long r = 0; r < rows; r += HEAD_ROWS) {
                    String slice = r + ":" + Math.min(rows, r + HEAD_ROWS);
                    perRow.add(positions(w, h.get(slice), batch.baseNormed().get(slice), batch.targets().get(slice)));
                }
                NDArray values = NDArrays.concat(perRow, 1);                                       // [3,R]
                if (LlamaModel.nonFinite(values).getBoolean()) {
                    throw new IllegalStateException("non-finite logits scoring the text (float16 overflow?)");
                }
                float[] v = values.toFloatArray();
                for (int i = 0; i < rows; i++) {
                    nll += v[i];
                    kl += v[(int) rows + i];
                    agreed += v[2 * (int) rows + i] > 0 ? 1 : 0;
                }
            }
        }
        return new TextScore(set.predicted(), nll, kl, agreed);
    }

    /**
     * Per position of a chunk of r rows: the next token's negative log-likelihood, KL(p_base ‖ p) and whether both
     * argmaxes agree, from normed states h [r,D] and the base model's hb [r,D] → [3,r] float32.
     */
    private NDArray positions(ModelWeights w, NDArray h, NDArray hb, NDArray targets) {
        Function<NDArray, NDArray> fp32 = a -> a.toType(DataType.FLOAT32, false);
        NDArray logits = fp32.apply(m.model().headChunks(w.lmHead(), h).singletonOrThrow());       // [r,V]
        NDArray baseLogits = fp32.apply(m.model().headChunks(m.weights().lmHead(), hb).singletonOrThrow()); // [r,V]
        NDArray logp = logits.logSoftmax(-1);                                                      // [r,V] log p
        NDArray logq = baseLogits.logSoftmax(-1);                                                  // [r,V] log p_base
        NDArray nll = logp.gather(targets.expandDims(1), 1).squeeze(1).neg();                      // [r]   −log p(next)
        NDArray kl = logq.exp().mul(logq.sub(logp)).sum(new int[] {1});                            // [r]   KL(p_base‖p)
        NDArray agree = logits.argMax(1).eq(baseLogits.argMax(1)).toType(DataType.FLOAT32, false); // [r]
        return NDArrays.stack(new NDList(nll, kl, agree));                                         // [3,r]
    }
}
