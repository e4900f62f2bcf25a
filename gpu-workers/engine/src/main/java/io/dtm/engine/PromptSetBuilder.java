package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Prepares a prompt set for many trials: one base teacher-forced pass per batch gives the reference tokens and fills
 * the cache a trial starts from (see {@link PromptSet}).
 */
final class PromptSetBuilder {

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(PromptSetBuilder.class);

    private final LoadedModel m;

    PromptSetBuilder(LoadedModel m) {
        this.m = m;
    }

    PromptSet build(List<int[]> promptIds, int[][] continuations, DivergenceEngine.Progress progress) {
        if (promptIds.isEmpty()) {
            throw new IllegalArgumentException("the prompt set is empty");
        }
        if (continuations.length != promptIds.size()) {
            throw new IllegalArgumentException(continuations.length + " continuations for " + promptIds.size() + " prompts");
        }
        int tokens = continuations[0].length;
        if (tokens < 1) {
            throw new IllegalArgumentException("continuations must have at least one token");
        }
        for (int p = 0; p < promptIds.size(); p++) {
            if (promptIds.get(p).length == 0) {
                throw new IllegalArgumentException("prompt " + p + " has no tokens");
            }
            if (continuations[p].length != tokens) {
                throw new IllegalArgumentException("continuation " + p + " has " + continuations[p].length
                        + " tokens, expected " + tokens);
            }
            m.checkLength(p, promptIds.get(p).length, tokens);
        }
        CachePlan plan = cachePlan(promptIds, tokens);
        List<PromptSet.Batch> batches = new ArrayList<>();
        InputNorms norms = new InputNorms(m.manager());
        int[][] references = new int[promptIds.size()][];
        long cacheBytes = 0;
        try {
            for (int first = 0; first < promptIds.size(); first += m.options().batchSize()) {
                int size = Math.min(m.options().batchSize(), promptIds.size() - first);
                PromptSet.Batch batch = baseBatch(promptIds, continuations, first, size, tokens, plan, norms);
                batches.add(batch);
                for (int b = 0; b < size; b++) {
                    references[first + b] = Arrays.copyOfRange(batch.references(), b * tokens, (b + 1) * tokens);
                }
                cacheBytes += batch.cacheBytes();
                progress.update("reference pass", first + size, promptIds.size());
            }
        } catch (RuntimeException e) {
            batches.forEach(PromptSet.Batch::close);
            norms.close();
            throw e;
        }
        return new PromptSet(tokens, promptIds, continuations, references, batches, plan.stride(), cacheBytes, norms);
    }

    /**
     * What the cache keeps: every {@code stride}-th layer input (1: all, plus the mid-layer states and the LM-head
     * certificate; 0: nothing), and, with stride 1, each layer's intermediates ({@code parts}) when the budget allows.
     */
    record CachePlan(int stride, boolean parts) {}

    /**
     * The richest cache that fits the budget, in bytes of the compute dtype, summed over batches of B prompts padded
     * to T positions with R = B·N scored rows. The last layer runs at the scored rows only, so its mid-layer state,
     * the final state and its q, context, silu(gate) and up have R rows: states are {@code (2L − 1)·B·T·D + 2·R·D};
     * intermediates {@code (L − 1)·B·T·(2HE + 2KE + 2F) + B·T·2KE + R·(2HE + 2F)}; the certificate (CPU only) is
     * {@link HeadCertificate#bytes}.
     */
    CachePlan cachePlan(List<int[]> promptIds, int tokens) {
        LlamaConfig c = m.config();
        long positions = 0;
        long rows = 0;
        long certificateBytes = 0;
        for (int first = 0; first < promptIds.size(); first += m.options().batchSize()) {
            int size = Math.min(m.options().batchSize(), promptIds.size() - first);
            positions += (long) size * paddedLength(promptIds, first, size, tokens);
            rows += (long) size * tokens;
            if (m.certify()) {
                certificateBytes += HeadCertificate.bytes((long) size * tokens, c.vocabSize(), c.hiddenSize());
            }
        }
        long unit = m.unit();
        int layers = c.numLayers();
        long d = c.hiddenSize();
        long attention = 2L * c.numHeads() * c.headDim();
        long keysValues = 2L * c.numKvHeads() * c.headDim();
        long mlp = 2L * c.intermediateSize();
        long entryBytes = positions * d * unit;
        long statesBytes = ((2L * layers - 1) * positions * d + 2 * rows * d) * unit + certificateBytes;
        long partsBytes = ((layers - 1) * positions * (attention + keysValues + mlp) + positions * keysValues
                + rows * (attention + mlp)) * unit;
        long budget = m.options().cacheBudgetBytes();
        if (statesBytes + partsBytes <= budget) {
            return new CachePlan(1, true);
        }
        if (statesBytes <= budget) {
            log.info("layer intermediates ({} bytes) exceed the cache budget of {}; caching layer states only",
                    partsBytes, budget);
            return new CachePlan(1, false);
        }
        for (int stride = 2; stride <= layers; stride++) {
            if (entryBytes * ((layers + stride - 1) / stride) + certificateBytes <= budget) {
                log.warn("layer cache of {} bytes exceeds the budget of {}; caching every {}-th layer",
                        statesBytes, budget, stride);
                return new CachePlan(stride, false);
            }
        }
        log.warn("even one cached layer ({} bytes) exceeds the budget of {}; every trial runs in full",
                entryBytes + certificateBytes, budget);
        return new CachePlan(0, false);
    }

    /**
     * Builds a right-padded batch of x ++ y, runs the base model over it, keeps what the plan asks and adds the batch's
     * linear inputs to the base input norms. The last token y_{N-1} predicts nothing that is scored, but it is one of
     * the prompt set's positions whose activations Wanda's input norms sum over; and since the pass runs the last layer
     * at the scored rows only, that layer runs once more over every position for its norms.
     */
    private PromptSet.Batch baseBatch(List<int[]> promptIds, int[][] continuations, int first, int size, int tokens,
                                      CachePlan plan, InputNorms norms) {
        int stride = plan.stride();
        int length = paddedLength(promptIds, first, size, tokens);
        long[] ids = new long[size * length];
        float[] valid = new float[size * length];
        long[] refsShape = {size, tokens};
        for (int b = 0; b < size; b++) {
            int[] prompt = promptIds.get(first + b);
            java.util.Arrays.fill(valid, b * length, b * length + prompt.length + tokens, 1f);
            for (int j = 0; j < prompt.length; j++) {
                ids[b * length + j] = prompt[j];
            }
            for (int i = 0; i < tokens; i++) {
                ids[b * length + prompt.length + i] = continuations[first + b][i];
            }
        }
        int layers = m.config().numLayers();
        NDArray[] inputs = new NDArray[layers + 1];
        NDArray[] mids = new NDArray[layers];
        LlamaModel.Attention[] attention = new LlamaModel.Attention[layers];
        LlamaModel.Mlp[] mlp = new LlamaModel.Mlp[layers];
        NDManager owner = m.manager().newSubManager();
        try (NDScope scope = new NDScope()) {
            NDArray idsArray = keep(m.manager().create(ids, new Shape(size, length)), owner);     // [B,T]
            NDArray mask = keep(causalMask(length), owner);                                      // [T,T]
            NDArray validArray = keep(m.manager().create(valid, new Shape(size, length, 1)), owner); // [B,T,1]
            LlamaModel.Queries scored = scoredQueries(promptIds, first, size, tokens, length, owner);
            LlamaModel.Rope r = m.model().rope(m.manager().arange(0, length, 1, DataType.INT64).reshape(1, length));
            LlamaModel.Rope rope = new LlamaModel.Rope(keep(r.cos(), owner), keep(r.sin(), owner)); // [1,1,T,E]
            LlamaModel.Tap cache = (l, input, a, mm) -> {
                if (stride > 0 && l % stride == 0) {
                    inputs[l] = keep(input, owner);                                              // [B,T,D]
                }
                if (stride == 1) {
                    mids[l] = keep(a.out(), owner);                                              // [B,T,D] ([B,N,D] last)
                }
                if (plan.parts()) {
                    attention[l] = new LlamaModel.Attention(keep(a.q(), owner), keep(a.k(), owner),
                            keep(a.v(), owner), keep(a.context(), owner), null);
                    mlp[l] = new LlamaModel.Mlp(keep(mm.gate(), owner), keep(mm.up(), owner), null);
                }
                if (l == layers - 1) {
                    m.model().layers(m.weights(), input, l, layers, LlamaModel.Pass.of(rope, mask)
                            .tapped(norms.tap(validArray, k -> k.layer() == layers - 1, LlamaModel.Tap.NONE)));
                }
            };
            LlamaModel.Tap tap = norms.tap(validArray, k -> k.layer() < layers - 1, cache);
            LlamaModel.Pass pass = LlamaModel.Pass.of(rope, mask).lastLayerOnly(scored).tapped(tap);
            NDArray x = m.model().layers(m.weights(), m.model().embed(m.weights(), idsArray), 0, layers, pass);
            if (stride == 1) {
                inputs[layers] = keep(x, owner);                                                 // [B,N,D] final state
            }
            NDArray normed = m.model().finalNorm(m.weights(), x.reshape(-1, m.config().hiddenSize())); // [R,D]
            NDArray argmax = m.model().argmaxTokens(m.weights().lmHead(), normed);              // [R]
            if (LlamaModel.nonFinite(normed).getBoolean()) {
                throw new IllegalStateException("non-finite hidden states in the base model's reference pass over"
                        + " prompts " + first + ".." + (first + size - 1) + " (NaN weights, or float16 overflow)");
            }
            int[] references = LoadedModel.toInts(argmax);
            NDArray referenceIds = keep(argmax.reshape(refsShape), owner);                       // [B,N]
            HeadCertificate certificate = stride > 0 && m.certify()
                    ? HeadCertificate.build(m.model(), m.weights().lmHead(), normed, argmax, owner) : null;
            return new PromptSet.Batch(owner, first, size, length, idsArray, mask, validArray, rope, scored,
                    references, referenceIds, inputs, mids, attention, mlp, certificate);
        } catch (RuntimeException e) {
            owner.close();
            throw e;
        }
    }

    /** T of a teacher-forced batch: its longest x ++ y. */
    private static int paddedLength(List<int[]> promptIds, int first, int size, int tokens) {
        int length = 0;
        for (int b = 0; b < size; b++) {
            length = Math.max(length, promptIds.get(first + b).length + tokens);
        }
        return length;
    }

    /**
     * The scored positions of a batch as queries: row b·T + P_b − 1 + i predicts token i of prompt b's continuation, at
     * position P_b − 1 + i, and sees the keys up to it.
     */
    private LlamaModel.Queries scoredQueries(List<int[]> promptIds, int first, int size, int tokens, int length,
                                             NDManager owner) {
        long[] rows = new long[size * tokens];
        long[] positions = new long[size * tokens];
        float[] mask = new float[size * tokens * length];
        for (int b = 0; b < size; b++) {
            for (int i = 0; i < tokens; i++) {
                int position = promptIds.get(first + b).length - 1 + i;
                rows[b * tokens + i] = (long) b * length + position;
                positions[b * tokens + i] = position;
                for (int k = position + 1; k < length; k++) {
                    mask[(b * tokens + i) * length + k] = m.model().maskValue();
                }
            }
        }
        LlamaModel.Rope rope = m.model().rope(m.manager().create(positions, new Shape(size, tokens)));
        return new LlamaModel.Queries(keep(m.manager().create(rows, new Shape(rows.length)), owner), tokens,
                new LlamaModel.Rope(keep(rope.cos(), owner), keep(rope.sin(), owner)),
                keep(m.model().mask(m.manager(), mask, new Shape(size, 1, 1, tokens, length)), owner));
    }

    /** Additive causal mask [T,T]: 0 where key ≤ query, the mask value above the diagonal. */
    private NDArray causalMask(int length) {
        float[] mask = new float[length * length];
        for (int q = 0; q < length; q++) {
            for (int k = q + 1; k < length; k++) {
                mask[q * length + k] = m.model().maskValue();
            }
        }
        return m.model().mask(m.manager(), mask, new Shape(length, length));
    }

    private static NDArray keep(NDArray a, NDManager owner) {
        return LoadedModel.keep(a, owner);
    }
}
