package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.IntStream;

/**
 * Scores a trial's weights over a prepared prompt set by one teacher-forced pass per batch: from the trial's entry
 * point in the cache (the fast path), or from the embeddings (the full pass). Predictions are compared with the
 * references on the device, so a trial reads back only its per-prompt FDT and divergent count, once.
 */
final class TeacherForcedScorer {

    private final LoadedModel m;
    private final LongAdder headRows = new LongAdder();
    private final LongAdder headRowsProven = new LongAdder();

    TeacherForcedScorer(LoadedModel m) {
        this.m = m;
    }

    /** FDT and SDT per prompt (dtm-spec "Teacher-forced divergence"); {@code entry} EMBEDDINGS is the full pass. */
    TrialScore score(PromptSet set, ModelWeights w, Entry entry, String trial, PhaseClock clock) {
        int n = set.tokens();
        try (NDScope scope = new NDScope()) {
            NDList perBatch = new NDList();
            for (PromptSet.Batch batch : set.batches()) {
                NDArray x = scoredRows(batch, w, entry);                                         // [R,D]
                clock.end("layers", x);
                NDArray h = m.model().finalNorm(w, x);                                           // [R,D]
                NDArray predicted = predict(batch, w, h, entry != Entry.EMBEDDINGS);            // [R]
                clock.end("norm+head", predicted);
                perBatch.add(divergence(batch, predicted, n, LlamaModel.nonFinite(h)));         // [2B+1]
                clock.end("compare", perBatch.get(perBatch.size() - 1));
            }
            long[] out = NDArrays.concat(perBatch).toLongArray();                               // the one read-back
            clock.end("read-back", null);
            int[] fdt = new int[set.size()];
            double[] sdt = new double[set.size()];
            int at = 0;
            for (PromptSet.Batch batch : set.batches()) {
                for (int b = 0; b < batch.size(); b++) {
                    fdt[batch.first() + b] = (int) out[at + b];
                    sdt[batch.first() + b] = (double) out[at + batch.size() + b] / n;
                }
                at += 2 * batch.size();
                if (out[at++] != 0) {
                    throw new IllegalStateException("non-finite hidden states in trial " + trial + " over prompts "
                            + batch.first() + ".." + (batch.first() + batch.size() - 1)
                            + " (float16 overflow, or a compression that produced NaN)");
                }
            }
            return new TrialScore(n, fdt, sdt);
        }
    }

    /**
     * FDT per prompt as the first i with ŷ_i ≠ r_i (N if none) and the count of such i, with a non-finite flag:
     * predicted [B·N] → [fdt B, count B, flag 1].
     */
    private NDArray divergence(PromptSet.Batch batch, NDArray predicted, int n, NDArray nonFinite) {
        NDArray diverged = predicted.reshape(batch.size(), n).neq(batch.referenceIds());          // [B,N] ŷ_i ≠ r_i
        NDArray count = diverged.sum(new int[] {1});                                             // [B]   |D|
        NDArray first = diverged.toType(DataType.INT32, false).argMax(1);                        // [B]   min D, 0 if empty
        NDArray none = count.eq(m.scalars().i64(0)).toType(DataType.INT64, false);               // [B]   D empty
        NDArray fdt = first.addi(none.muli(m.scalars().i64(n)));                                 // [B]   N where D empty
        return NDArrays.concat(new NDList(fdt, count, nonFinite.toType(DataType.INT64, false).reshape(1)));
    }

    /**
     * The greedy token of each scored row [R]: through the LM head, or, on the fast path with a certificate, the
     * reference token wherever the certificate proves it and the head only for the other rows.
     */
    private NDArray predict(PromptSet.Batch batch, ModelWeights w, NDArray h, boolean fast) {
        HeadCertificate certificate = batch.certificate();
        if (!fast || certificate == null || !certificate.covers(w)) {
            return m.model().argmaxTokens(w.lmHead(), h);                                       // [R]
        }
        boolean[] proven = certificate.certify(h).toBooleanArray();                              // [R] provably still r
        long[] open = IntStream.range(0, proven.length).filter(i -> !proven[i]).mapToLong(i -> i).toArray();
        long[] tokens = new long[proven.length];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = batch.references()[i];
        }
        if (open.length > 0) {
            NDArray rows = m.manager().create(open, new Shape(open.length));                     // [U]
            long[] chosen = m.model().argmaxTokens(w.lmHead(), h.get(rows)).toLongArray();       // [U] the real head
            for (int i = 0; i < open.length; i++) {
                tokens[(int) open[i]] = chosen[i];
            }
        }
        headRows.add(proven.length);
        headRowsProven.add(proven.length - open.length);
        return m.manager().create(tokens);                                                      // [R]
    }

    /** Share of the fast path's scored rows whose greedy token {@link HeadCertificate} proved without the LM head. */
    double headRowsProven() {
        long rows = headRows.sum();
        return rows == 0 ? 0 : (double) headRowsProven.sum() / rows;
    }

    /** Greedy tokens [R] and top-1 minus top-2 logit margins [R] of the scored rows, from the fast path's state. */
    NDList tokensAndMargins(PromptSet.Batch batch, ModelWeights w, Entry entry) {
        return m.model().tokensAndMargins(w.lmHead(), m.model().finalNorm(w, scoredRows(batch, w, entry)));
    }

    /** Runs the layers from the entry point and returns the final hidden states of the scored rows, [R,D]. */
    private NDArray scoredRows(PromptSet.Batch batch, ModelWeights w, Entry entry) {
        int layers = m.config().numLayers();
        LlamaModel.Pass pass = LlamaModel.Pass.of(batch.rope(), batch.mask()).lastLayerOnly(batch.scored());
        NDArray x;
        if (entry instanceof Entry.LayerInput at) {
            LlamaModel.Reuse reuse = new LlamaModel.Reuse(batch.attentionReuse(at.layer(), at.changed()),
                    LlamaModel.Mlp.NONE, false);
            x = m.model().layers(w, batch.inputs()[at.layer()], at.layer(), layers, pass.entering(reuse)); // [B,N,D]
        } else if (entry instanceof Entry.MidLayer at) {
            LlamaModel.Reuse reuse = new LlamaModel.Reuse(LlamaModel.Attention.NONE,
                    batch.mlpReuse(at.layer(), at.changed()), true);
            x = m.model().layers(w, batch.mids()[at.layer()], at.layer(), layers, pass.entering(reuse)); // [B,N,D]
        } else if (entry instanceof Entry.FinalState) {
            x = batch.inputs()[layers];                                                          // [B,N,D] cached
        } else {
            x = m.model().layers(w, m.model().embed(w, batch.ids()), 0, layers, pass);           // [B,N,D]
        }
        return x.reshape(-1, m.config().hiddenSize());                                           // [R,D]
    }
}
