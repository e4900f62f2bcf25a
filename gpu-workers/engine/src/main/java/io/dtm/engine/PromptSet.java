package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A prompt set prepared once for many trials: prompt ids, the base model's greedy continuations y, its teacher-forced
 * argmax r (the reference tokens), and, per batch of prompts, the base hidden states at layer inputs so a trial can
 * start at its first changed layer.
 *
 * <p>The cache holds, per batch ({@code T = P + N} padded positions), each layer's input and mid-point (after
 * attention) and the final hidden state, {@code B × T × D} each except the last layer's mid-point and output, which
 * cover the {@code B × N} scored rows only (nothing attends to the last layer, so it runs at those rows); each layer's
 * intermediates (rotated q and k, v, the attention context, silu(gate), up), so a trial recomputes only what its
 * compressed matrix changes in its first layer; and on a CPU the {@link HeadCertificate} of the scored rows. When that exceeds the budget the intermediates go first;
 * then only every {@code stride}-th layer input is kept, and a trial recomputes from the nearest one below its first
 * change.
 */
public final class PromptSet implements AutoCloseable {

    /**
     * One forward batch: right-padded teacher-forced sequences x ++ y and their cache, all owned by the batch's
     * own manager. {@code valid} [B,T,1] is 1 at the positions of x ++ y and 0 at padding. {@code references} are the
     * scored rows' reference tokens on the host, {@code referenceIds} the same [B,N] on the device for trials to compare
     * against there. {@code attention} and {@code mlp} hold each layer's base
     * intermediates, or nulls when the budget leaves them out.
     */
    record Batch(NDManager owner, int first, int size, int length, NDArray ids, NDArray mask, NDArray valid,
                 LlamaModel.Rope rope, LlamaModel.Queries scored, int[] references, NDArray referenceIds,
                 NDArray[] inputs, NDArray[] mids, LlamaModel.Attention[] attention, LlamaModel.Mlp[] mlp,
                 HeadCertificate certificate) {

        /**
         * The base intermediates of layer l's attention half that a trial changing {@code changed} (local names such
         * as {@code self_attn.q_proj}) may reuse: those of its unchanged projections, and the context only if all
         * three are. They have the shapes that layer's pass uses: the last layer's q and context cover the scored
         * rows only, as its queries do.
         */
        LlamaModel.Attention attentionReuse(int l, Set<String> changed) {
            LlamaModel.Attention base = attention[l];
            if (base == null) {
                return LlamaModel.Attention.NONE;
            }
            boolean q = !changed.contains("self_attn.q_proj");
            boolean k = !changed.contains("self_attn.k_proj");
            boolean v = !changed.contains("self_attn.v_proj");
            return new LlamaModel.Attention(q ? base.q() : null, k ? base.k() : null, v ? base.v() : null,
                    q && k && v ? base.context() : null, null);
        }

        /** The base intermediates of layer l's MLP half that a trial changing {@code changed} may reuse. */
        LlamaModel.Mlp mlpReuse(int l, Set<String> changed) {
            LlamaModel.Mlp base = mlp[l];
            if (base == null) {
                return LlamaModel.Mlp.NONE;
            }
            return new LlamaModel.Mlp(changed.contains("mlp.gate_proj") ? null : base.gate(),
                    changed.contains("mlp.up_proj") ? null : base.up(), null);
        }

        private Stream<NDArray> cached() {
            return Stream.of(Arrays.stream(inputs), Arrays.stream(mids),
                            Arrays.stream(attention).filter(Objects::nonNull)
                                    .flatMap(a -> Stream.of(a.q(), a.k(), a.v(), a.context())),
                            Arrays.stream(mlp).filter(Objects::nonNull).flatMap(m -> Stream.of(m.gate(), m.up())))
                    .flatMap(s -> s).filter(Objects::nonNull);
        }

        /** Bytes this batch's cache holds in device memory. */
        long cacheBytes() {
            return cached().mapToLong(a -> a.size() * a.getDataType().getNumOfBytes()).sum()
                    + (certificate == null ? 0 : certificate.bytes());
        }

        void close() {
            owner.close();
        }
    }

    private final int tokens;
    private final List<int[]> promptIds;
    private final int[][] continuations;
    private final int[][] references;
    private final List<Batch> batches;
    private final int cacheStride;
    private final long cacheBytes;
    private final InputNorms baseNorms;

    PromptSet(int tokens, List<int[]> promptIds, int[][] continuations, int[][] references, List<Batch> batches,
              int cacheStride, long cacheBytes, InputNorms baseNorms) {
        this.tokens = tokens;
        this.promptIds = List.copyOf(promptIds);
        this.continuations = continuations;
        this.references = references;
        this.batches = List.copyOf(batches);
        this.cacheStride = cacheStride;
        this.cacheBytes = cacheBytes;
        this.baseNorms = baseNorms;
    }

    /** The base model's input norms of every linear component over this set, from its reference pass. */
    InputNorms baseNorms() {
        return baseNorms;
    }

    public int size() {
        return promptIds.size();
    }

    /** N, the number of generated tokens scored per prompt. */
    public int tokens() {
        return tokens;
    }

    public List<int[]> promptIds() {
        return promptIds;
    }

    /** The base model's greedy continuations y (N tokens each). */
    public int[][] continuations() {
        return continuations;
    }

    /** The base model's teacher-forced argmax r: the reference tokens trials are compared against. */
    public int[][] references() {
        return references;
    }

    /** The reference tokens of all prompts in one array, prompt-major: what {@link TrialScore#compare} takes. */
    int[] flatReferences() {
        return Arrays.stream(references).flatMapToInt(Arrays::stream).toArray();
    }

    /**
     * Per prompt, the first position where the base model's teacher-forced argmax differs from its own greedy
     * continuation (N if none): a value below N marks a near-tie prompt, where cached-KV generation and a full pass
     * disagree by rounding.
     */
    public int[] baseSelfConsistency() {
        int[] out = new int[size()];
        for (int p = 0; p < out.length; p++) {
            int i = 0;
            while (i < tokens && continuations[p][i] == references[p][i]) {
                i++;
            }
            out[p] = i;
        }
        return out;
    }

    /** Every {@code stride}-th layer input is cached (1: all, plus mid-layer states); 0: no cache. */
    public int cacheStride() {
        return cacheStride;
    }

    public long cacheBytes() {
        return cacheBytes;
    }

    List<Batch> batches() {
        return batches;
    }

    @Override
    public void close() {
        batches.forEach(Batch::close);
        baseNorms.close();
    }
}
