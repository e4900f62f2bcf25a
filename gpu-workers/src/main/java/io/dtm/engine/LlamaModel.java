package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.core.Linear;

/**
 * The Llama decoder forward pass in DJL NDArray ops, one method per half-layer so that a trial can start at the
 * layer (or the MLP half) its first compressed component lives in.
 *
 * <p>Dimension letters: B batch of prompts, T query positions, S key positions (past + new), D hidden size,
 * H query heads, K key/value heads, G = H/K query heads sharing one key/value head, E head dim, F MLP intermediate
 * size, V vocabulary, R scored rows.
 *
 * <p>Every step mirrors Hugging Face {@code LlamaForCausalLM} in float32 so greedy tokens agree with it bit for bit
 * except at numerical near-ties: RMSNorm in float32 with {@code rsqrt} (DJL's {@code pow(-0.5)} is torch's rsqrt
 * kernel), SiLU as {@code x / (1 + e^-x)}, softmax in float32, rotary tables computed as {@code position · inv_freq}.
 */
final class LlamaModel {

    final LlamaConfig config;
    final DataType dtype;
    private final NDArray invFreq;
    private final float scale;
    private final int heads;
    private final int kvHeads;
    private final int headDim;

    LlamaModel(LlamaConfig config, NDManager manager, DataType dtype) {
        this.config = config;
        this.dtype = dtype;
        this.heads = config.numHeads();
        this.kvHeads = config.numKvHeads();
        this.headDim = config.headDim();
        this.scale = (float) (1.0 / Math.sqrt(headDim));
        // inv_freq_i = 1 / θ^(2i/E), in float32 exactly as transformers computes it
        NDArray exponents = manager.arange(0, headDim, 2, DataType.INT64).toType(DataType.FLOAT32, false).div(headDim);
        this.invFreq = manager.full(exponents.getShape(), (float) config.ropeTheta()).pow(exponents).pow(-1);
        exponents.close();
    }

    /** Token embeddings: ids [B,T] → x [B,T,D]. */
    NDArray embed(Weights w, NDArray ids) {
        return w.get("model.embed_tokens.weight").get(ids);
    }

    /** Rotary cos/sin for positions [B,T] (or [1,T] when every row starts at 0), shaped to broadcast over heads. */
    Rope rope(NDArray positions) {
        NDArray freqs = positions.toType(DataType.FLOAT32, false).expandDims(2).mul(invFreq); // [B,T,E/2] position·θ_i
        NDArray angles = freqs.concat(freqs, 2);                                                  // [B,T,E] halves share angles
        return new Rope(angles.cos().toType(dtype, false).expandDims(1),                          // [B,1,T,E]
                angles.sin().toType(dtype, false).expandDims(1));                                 // [B,1,T,E]
    }

    /** First half of decoder layer l: x + o_proj(attention(rmsnorm(x))). x [B,T,D] → [B,T,D]. */
    NDArray attention(Weights w, int l, NDArray x, Rope rope, NDArray mask, KvCache cache) {
        return attention(w, l, x, rope, mask, cache, Attention.NONE, null).out();
    }

    /**
     * The first half of decoder layer l with its intermediates. Those given in {@code reuse} are taken instead of
     * computed: a trial that starts at this layer passes the base model's for the matrices it left unchanged (x is
     * then the base input), so an o_proj trial, say, skips the projections and the attention itself. With
     * {@code queries}, only those positions query (keys and values still cover all T) and the output is theirs,
     * [B,T',D]: what the last layer needs, since no position attends to its output.
     */
    Attention attention(Weights w, int l, NDArray x, Rope rope, NDArray mask, KvCache cache, Attention reuse,
                        Queries queries) {
        String p = "model.layers." + l + ".self_attn.";
        long b = x.getShape().get(0);
        long t = x.getShape().get(1);
        long tq = queries == null ? t : queries.count();                                        // T' query positions
        int groups = heads / kvHeads;
        NDArray q = reuse.q();
        NDArray k = reuse.k();
        NDArray v = reuse.v();
        NDArray context = reuse.context();
        if (context == null) {
            NDArray h = rmsNorm(x, w.get("model.layers." + l + ".input_layernorm.weight"));    // [B,T,D]
            if (q == null) {
                NDArray hq = queries == null ? h : queries.of(h);                                // [B,T',D]
                q = linear(hq, w, p + "q_proj").reshape(b, tq, heads, headDim).transpose(0, 2, 1, 3); // [B,H,T',E]
                q = (queries == null ? rope : queries.rope()).rotate(q);                         // [B,H,T',E]
            }
            if (k == null) {
                k = linear(h, w, p + "k_proj").reshape(b, t, kvHeads, headDim).transpose(0, 2, 1, 3); // [B,K,T,E]
                k = rope.rotate(k);                                                              // [B,K,T,E]
            }
            if (v == null) {
                v = linear(h, w, p + "v_proj").reshape(b, t, kvHeads, headDim).transpose(0, 2, 1, 3); // [B,K,T,E]
            }
            NDArray keys = cache == null ? k : cache.appendKeys(l, k);                          // [B,K,S,E] past ++ new
            NDArray values = cache == null ? v : cache.appendValues(l, v);                      // [B,K,S,E]
            NDArray qg = q.reshape(b, kvHeads, groups, tq, headDim);                             // [B,K,G,T',E] by kv head
            NDArray scores = qg.matMul(keys.expandDims(2).swapAxes(3, 4)).muli(scale);           // [B,K,G,T',S] q·k/√E
            NDArray probs = softmax(scores.addi(queries == null ? mask : queries.mask()));       // [B,K,G,T',S] masked → 0
            context = probs.matMul(values.expandDims(2))                                         // [B,K,G,T',E]
                    .reshape(b, heads, tq, headDim).transpose(0, 2, 1, 3).reshape(b, tq, (long) heads * headDim); // [B,T',H·E]
        }
        NDArray residual = queries == null ? x : queries.of(x);                                  // [B,T',D]
        NDArray out = linear(context, w, p + "o_proj").addi(residual);                           // [B,T',D]
        return new Attention(q, k, v, context, out);
    }

    /** Second half of decoder layer l: x + down(silu(gate(rmsnorm(x))) · up(rmsnorm(x))). x [B,T,D] → [B,T,D]. */
    NDArray mlp(Weights w, int l, NDArray x) {
        return mlp(w, l, x, Mlp.NONE).out();
    }

    /** The second half of decoder layer l with its intermediates; those in {@code reuse} are taken, not computed. */
    Mlp mlp(Weights w, int l, NDArray x, Mlp reuse) {
        String p = "model.layers." + l + ".mlp.";
        NDArray gate = reuse.gate();
        NDArray up = reuse.up();
        if (gate == null || up == null) {
            NDArray h = rmsNorm(x, w.get("model.layers." + l + ".post_attention_layernorm.weight")); // [B,T,D]
            if (gate == null) {
                NDArray g = linear(h, w, p + "gate_proj");                                       // [B,T,F]
                gate = g.divi(g.neg().exp().addi(1));                                            // [B,T,F] silu(gate)
            }
            if (up == null) {
                up = linear(h, w, p + "up_proj");                                                // [B,T,F]
            }
        }
        NDArray act = gate.mul(up);                                                              // [B,T,F] silu(gate)·up
        NDArray out = linear(act, w, p + "down_proj").addi(x);                                  // [B,T,D] residual
        return new Mlp(gate, up, out);
    }

    /**
     * A subset of query positions: the same {@code count} rows of every sequence of a batch, as flat indices into its
     * [B·T] positions (sequence-major), with their rotary tables [B,1,T',E] and additive mask [B,1,1,T',T].
     */
    record Queries(NDArray rows, long count, Rope rope, NDArray mask) {
        /** These positions of a batch-shaped array, one row each: [B,T,W] → [B·T',W]. */
        NDArray flat(NDArray a) {
            long width = a.getShape().get(a.getShape().dimension() - 1);
            return a.reshape(-1, width).get(rows);                                               // [B·T',W]
        }

        /** These positions of a batch-shaped array: [B,T,W] → [B,T',W]. */
        NDArray of(NDArray a) {
            return flat(a).reshape(a.getShape().get(0), count, -1);                             // [B,T',W]
        }
    }

    /** Intermediates of an attention half: rotated q [B,H,T,E] and k [B,K,T,E], v [B,K,T,E], context [B,T,H·E]. */
    record Attention(NDArray q, NDArray k, NDArray v, NDArray context, NDArray out) {
        static final Attention NONE = new Attention(null, null, null, null, null);
    }

    /** Intermediates of an MLP half: silu(gate) [B,T,F] and up [B,T,F]. */
    record Mlp(NDArray gate, NDArray up, NDArray out) {
        static final Mlp NONE = new Mlp(null, null, null);
    }

    /**
     * Rows per LM-head matmul. The logits of a whole batch ({@code R × V} floats, 64 MB for 64 prompts × 64 tokens of
     * a 4096 vocabulary) are a fresh large allocation every call, which costs page faults as much as the matmul
     * itself; chunks of rows stay small and reuse memory (measured: ~72 ms instead of 65-165 ms), with identical bits.
     */
    private static final long HEAD_ROWS = 512;

    /** Final RMSNorm of the rows to score: x [R,D] → h [R,D], the LM head's input. */
    NDArray finalNorm(Weights w, NDArray x) {
        return rmsNorm(x, w.get("model.norm.weight"));                                          // [R,D]
    }

    /** LM head and greedy choice: normed rows h [R,D] → token ids [R]. */
    NDArray argmaxTokens(Weights w, NDArray h) {
        NDList tokens = new NDList();
        for (NDArray logits : headChunks(w, h)) {                                               // [r,V] each
            tokens.add(logits.argMax(-1));                                                       // [r] first max wins, as torch
        }
        return NDArrays.concat(tokens);                                                         // [R]
    }

    /** Greedy tokens [R] and top-1 minus top-2 logit margins [R] of normed rows h [R,D], from the same logits. */
    NDList tokensAndMargins(Weights w, NDArray h) {
        NDList tokens = new NDList();
        NDList margins = new NDList();
        for (NDArray logits : headChunks(w, h)) {                                               // [r,V]
            tokens.add(logits.argMax(-1));                                                       // [r]
            NDArray top2 = logits.topK(2, -1).get(0);                                            // [r,2]
            margins.add(top2.get(":, 0").sub(top2.get(":, 1")));                                 // [r]
        }
        return new NDList(NDArrays.concat(tokens), NDArrays.concat(margins));
    }

    /** Logits of normed rows, chunk by chunk: h [R,D] → [r,V] per chunk of at most HEAD_ROWS rows. */
    NDList headChunks(Weights w, NDArray h) {
        long rows = h.getShape().get(0);
        NDList chunks = new NDList();
        for (long r = 0; r < rows; r += HEAD_ROWS) {
            chunks.add(linear(h.get(r + ":" + Math.min(rows, r + HEAD_ROWS)), w, "lm_head"));    // [r,V]
        }
        return chunks;
    }

    private NDArray rmsNorm(NDArray x, NDArray weight) {
        NDArray x32 = x.toType(DataType.FLOAT32, false);                                          // [..,D] norm in fp32
        NDArray inverseRms = x32.square().mean(new int[] {-1}, true).add(config.rmsNormEps()).pow(-0.5); // [..,1]
        return x32.mul(inverseRms).toType(dtype, false).muli(weight);                            // [..,D]
    }

    private NDArray softmax(NDArray scores) {
        return dtype == DataType.FLOAT32 ? scores.softmax(-1)
                : scores.toType(DataType.FLOAT32, false).softmax(-1).toType(dtype, false);
    }

    private static NDArray linear(NDArray x, Weights w, String prefix) {
        NDList out = Linear.linear(x, w.get(prefix + ".weight"), w.get(prefix + ".bias"));
        return out.singletonOrThrow();
    }

    /** The most negative finite value of the compute dtype: a masked score that still never produces NaN. */
    float maskValue() {
        return dtype == DataType.FLOAT16 ? -65504f : -Float.MAX_VALUE;
    }

    /** Rotary position embedding tables for one batch layout. */
    record Rope(NDArray cos, NDArray sin) {
        /** x·cos + rotate_half(x)·sin, rotate_half(x) = [-x₂, x₁]: x [B,*,T,E] → [B,*,T,E]. */
        NDArray rotate(NDArray x) {
            int last = x.getShape().dimension() - 1;
            NDList halves = x.split(2, last);                                                      // 2 × [B,*,T,E/2]
            NDArray rotated = NDArrays.concat(new NDList(halves.get(1).neg(), halves.get(0)), last); // [B,*,T,E]
            return x.mul(cos).addi(rotated.muli(sin));                                           // [B,*,T,E]
        }
    }
}
