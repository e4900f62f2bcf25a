package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import java.util.stream.Stream;

/**
 * Proves, without the LM head's matmul, that a compressed model still picks the reference token at a scored row.
 *
 * <p>A trial only needs to know, per row, whether the reference token r (the base model's argmax) is still the argmax
 * of the compressed logits z' = W·h', where h' is the final normed hidden state. With h the base state,
 * Δ = ‖h' − h‖ and z = W·h the base logits, every other token v obeys
 *
 * <pre>  z'_v = z_v + (h' − h)·w_v ≤ z_v + Δ·‖w_v‖          (Cauchy–Schwarz)</pre>
 *
 * so r is the argmax when the exact z'_r = w_r·h' exceeds every other token's bound. The bound is loose by about
 * √D (Δh is spread over all D directions), so it is used only where the base logits leave room, and the close calls
 * are scored exactly:
 * <ul>
 *   <li>the J = 8 strongest rivals of r in the base logits, per row (their head rows are kept: a batched dot product);
 *   <li>the X = V/32 tokens whose head rows have the largest norm (a matmul of 3% of the head's): LM heads have a few
 *       rows of much larger norm than the rest (brown-llama-8m: ~100 near 2.1, the 129th at 1.47, the largest 2.73);
 *   <li>the next K − J = 24 rivals are bounded one by one, and all other tokens together by the K-th rival's logit
 *       plus {@code Δ·τ}, τ the largest norm outside the exact set.
 * </ul>
 * Rows whose bound does not clear, by more than a worst-case rounding allowance, go through the real LM head; so the
 * tokens a trial reports are those of the full head, bit for bit. On the bench sweep it proves over 80% of the rows.
 *
 * <p>It is valid only for the head it was built from: a trial that compresses {@code lm_head} (or a tied embedding)
 * must use the full head. Dimension letters as in {@link LlamaModel}; X the exactly scored tokens, K the rivals kept
 * per row, J of them scored exactly.
 */
final class HeadCertificate {

    /** Rivals kept per row; the rest share one bound. */
    static final int RIVALS = 32;

    /**
     * Rivals scored exactly, by their kept head rows (J·D floats per row). The close calls are the nearest rivals:
     * on the bench sweep J = 8 proves 83% of rows against 32% with none, and J = 16 is no faster.
     */
    static final int EXACT_RIVALS = 8;

    private final NDArray head;         // [V,D] the LM head it was built from (the model's, not owned)
    private final NDArray baseNormed;   // [R,D] h
    private final NDArray refRows;      // [R,D] w_r
    private final NDArray exactRows;    // [D,X] w_v of the largest-norm tokens, transposed for the matmul
    private final NDArray exactIsRef;   // [R,X] -max where that token is the row's r, else 0
    private final NDArray rivalRows;    // [R,J,D] w_v of the J strongest v ≠ r outside the exact set
    private final NDArray rivals;       // [R,K-J] z_v of the next K − J
    private final NDArray rivalNorms;   // [R,K-J] ‖w_v‖ of those
    private final NDArray floor;        // [R]   the (K+1)-th: bounds all other z_v
    private final float restNorm;       // τ: the largest ‖w_v‖ outside the exact set
    private final float maxNorm;        // max_v ‖w_v‖, the scale of any logit error
    private final float rounding;       // per unit of ‖h'‖·max‖w‖: covers every float error in the comparison

    private HeadCertificate(NDArray head, NDArray baseNormed, NDArray refRows, NDArray exactRows, NDArray exactIsRef,
                            NDArray rivalRows, NDArray rivals, NDArray rivalNorms, NDArray floor, float restNorm,
                            float maxNorm, float rounding) {
        this.head = head;
        this.baseNormed = baseNormed;
        this.refRows = refRows;
        this.exactRows = exactRows;
        this.exactIsRef = exactIsRef;
        this.rivalRows = rivalRows;
        this.rivals = rivals;
        this.rivalNorms = rivalNorms;
        this.floor = floor;
        this.restNorm = restNorm;
        this.maxNorm = maxNorm;
        this.rounding = rounding;
    }

    /**
     * Builds the certificate of a batch from the base model's normed rows [R,D] and reference tokens [R], or returns
     * null when the vocabulary is too small to hold more rivals than are scored exactly. Call it inside a scope: what
     * it keeps is taken out of that scope and attached to {@code owner}.
     */
    static HeadCertificate build(LlamaModel model, NDArray modelHead, NDArray normed, NDArray references,
                                 NDManager owner) {
        NDArray head = modelHead.toType(DataType.FLOAT32, false);                                // [V,D]
        int vocab = Math.toIntExact(head.getShape().get(0));
        int x = exactTokens(vocab);
        int k = rivals(vocab);
        if (k <= EXACT_RIVALS) {
            return null;
        }
        int j = EXACT_RIVALS;
        NDArray norms = head.square().sum(new int[] {1}).sqrt();                                 // [V] ‖w_v‖
        NDList largest = norms.topK(x + 1, 0, true, true);                                       // [X+1] ×2
        NDArray exactIds = largest.get(1).get(":" + x);                                          // [X]
        NDArray tokenIds = normed.getManager().arange(0, vocab, 1, references.getDataType()).expandDims(0); // [1,V]
        float[] hidden = new float[vocab];
        for (long id : exactIds.toLongArray()) {
            hidden[(int) id] = LlamaModel.MASKED;
        }
        NDArray hideExact = normed.getManager().create(hidden);                                  // [V] exact → -max
        NDList values = new NDList();
        NDList indices = new NDList();
        long row = 0;
        for (NDArray logits : model.headChunks(modelHead, normed)) {                                     // [r,V] each
            long r = logits.getShape().get(0);
            NDArray refs = references.get(row + ":" + (row + r)).expandDims(1);                   // [r,1]
            NDArray hideRef = tokenIds.eq(refs).toType(DataType.FLOAT32, false).mul(LlamaModel.MASKED); // [r,V]
            NDList top = logits.toType(DataType.FLOAT32, false).add(hideRef).add(hideExact)
                    .topK(k + 1, -1, true, true);                                                // [r,K+1] ×2
            values.add(top.get(0));
            indices.add(top.get(1));
            row += r;
        }
        NDArray topValues = NDArrays.concat(values);                                             // [R,K+1]
        NDArray topIds = NDArrays.concat(indices);                                               // [R,K+1]
        NDArray exactIsRef = references.expandDims(1).eq(exactIds.expandDims(0))
                .toType(DataType.FLOAT32, false).mul(LlamaModel.MASKED);                          // [R,X]
        // worst-case float error of one length-D dot product is D·u·‖a‖‖b‖; 8× that covers the base logits, z'_r, the
        // exact logits, Δ and the norms together
        double unit = model.dtype == DataType.FLOAT16 ? 0x1p-11 : 0x1p-24;
        float rounding = (float) (8.0 * head.getShape().get(1) * unit);
        return new HeadCertificate(
                modelHead,
                keep(normed.toType(DataType.FLOAT32, true), owner),
                keep(head.get(references), owner),
                keep(head.get(exactIds).transpose().duplicate(), owner),
                keep(exactIsRef, owner),
                keep(head.get(topIds.get(":, :" + j)), owner),
                keep(topValues.get(":, " + j + ":" + k), owner),
                keep(norms.get(topIds.get(":, " + j + ":" + k)), owner),
                keep(topValues.get(":, " + k), owner),
                largest.get(0).getFloat(x),
                norms.max().getFloat(),
                rounding);
    }

    /** Whether a trial's weights use the LM head this certificate was built from (one that compresses it does not). */
    boolean covers(ModelWeights w) {
        return w.lmHead() == head;
    }

    /** Which rows provably still choose the reference token: normed compressed rows h' [R,D] → boolean [R]. */
    NDArray certify(NDArray normed) {
        NDArray h = normed.toType(DataType.FLOAT32, false);                                      // [R,D] h'
        NDArray delta = h.sub(baseNormed).norm(new int[] {1});                                   // [R]   Δ = ‖h'−h‖
        NDArray refLogit = h.mul(refRows).sum(new int[] {1});                                    // [R]   z'_r exact
        NDArray exactBound = h.matMul(exactRows).addi(exactIsRef).max(new int[] {1});            // [R]   X exact, v≠r
        NDArray closeRivals = rivalRows.matMul(h.expandDims(2)).squeeze(2).max(new int[] {1});   // [R]   J exact
        NDArray rivalBound = rivals.add(rivalNorms.mul(delta.expandDims(1))).max(new int[] {1}); // [R]   K − J bounded
        NDArray restBound = floor.add(delta.mul(restNorm));                                      // [R]   all others
        NDArray bound = NDArrays.maximum(NDArrays.maximum(exactBound, closeRivals),
                NDArrays.maximum(rivalBound, restBound));                                        // [R]   ≥ max z'_v, v≠r
        NDArray allowance = h.norm(new int[] {1}).mul(maxNorm * rounding);                       // [R]
        return refLogit.sub(bound).gt(allowance);                                                // [R]
    }

    private static int exactTokens(int vocab) {
        return Math.max(1, vocab / 32);
    }

    private static int rivals(int vocab) {
        return Math.min(RIVALS, vocab - exactTokens(vocab) - 2);
    }

    /** Bytes of the certificate of R scored rows (float32 whatever the compute dtype); 0 if it cannot be built. */
    static long bytes(long rows, int vocab, int hidden) {
        long x = exactTokens(vocab);
        long k = rivals(vocab);
        long j = EXACT_RIVALS;
        return k <= j ? 0 : 4 * ((2 + j) * rows * hidden + hidden * x + rows * x + 2 * rows * (k - j) + rows);
    }

    long bytes() {
        return arrays().mapToLong(NDArray::size).sum() * 4;
    }

    private Stream<NDArray> arrays() {
        return Stream.of(baseNormed, refRows, exactRows, exactIsRef, rivalRows, rivals, rivalNorms, floor);
    }

    /** Takes an array out of the current scope and gives it to the prompt set's batch, which frees it. */
    private static NDArray keep(NDArray a, NDManager owner) {
        NDScope.unregister(a);
        a.attach(owner);
        return a;
    }
}
