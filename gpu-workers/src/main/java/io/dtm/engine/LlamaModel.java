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
        String p = "model.layers." + l + ".self_attn.";
        long b = x.getShape().get(0);
        long t = x.getShape().get(1);
        int groups = heads / kvHeads;
        NDArray h = rmsNorm(x, w.get("model.layers." + l + ".input_layernorm.weight"));        // [B,T,D]
        NDArray q = linear(h, w, p + "q_proj").reshape(b, t, heads, headDim).transpose(0, 2, 1, 3); // [B,H,T,E]
        NDArray k = linear(h, w, p + "k_proj").reshape(b, t, kvHeads, headDim).transpose(0, 2, 1, 3); // [B,K,T,E]
        NDArray v = linear(h, w, p + "v_proj").reshape(b, t, kvHeads, headDim).transpose(0, 2, 1, 3); // [B,K,T,E]
        q = rope.rotate(q);                                                                      // [B,H,T,E]
        k = rope.rotate(k);                                                                      // [B,K,T,E]
        if (cache != null) {
            k = cache.appendKeys(l, k);                                                          // [B,K,S,E] past ++ new
            v = cache.appendValues(l, v);                                                        // [B,K,S,E]
        }
        NDArray qg = q.reshape(b, kvHeads, groups, t, headDim);                                  // [B,K,G,T,E] heads by kv head
        NDArray scores = qg.matMul(k.expandDims(2).swapAxes(3, 4)).mul(scale);                   // [B,K,G,T,S] q·k/√E
        NDArray probs = softmax(scores.add(mask));                                               // [B,K,G,T,S] masked → 0
        NDArray context = probs.matMul(v.expandDims(2))                                          // [B,K,G,T,E]
                .reshape(b, heads, t, headDim).transpose(0, 2, 1, 3).reshape(b, t, (long) heads * headDim); // [B,T,H·E]
        return x.add(linear(context, w, p + "o_proj"));                                         // [B,T,D] residual
    }

    /** Second half of decoder layer l: x + down(silu(gate(rmsnorm(x))) · up(rmsnorm(x))). x [B,T,D] → [B,T,D]. */
    NDArray mlp(Weights w, int l, NDArray x) {
        String p = "model.layers." + l + ".mlp.";
        NDArray h = rmsNorm(x, w.get("model.layers." + l + ".post_attention_layernorm.weight")); // [B,T,D]
        NDArray gate = linear(h, w, p + "gate_proj");                                            // [B,T,F]
        NDArray up = linear(h, w, p + "up_proj");                                                // [B,T,F]
        NDArray act = gate.div(gate.neg().exp().add(1)).mul(up);                                 // [B,T,F] silu(gate)·up
        return x.add(linear(act, w, p + "down_proj"));                                          // [B,T,D] residual
    }

    /** Final norm, LM head and greedy choice for the rows to score: x [R,D] → token ids [R]. */
    NDArray argmaxTokens(Weights w, NDArray x) {
        NDArray h = rmsNorm(x, w.get("model.norm.weight"));                                     // [R,D]
        NDArray logits = linear(h, w, "lm_head");                                                // [R,V]
        return logits.argMax(-1);                                                                // [R] first max wins, as torch
    }

    /** Logits of the rows to score: x [R,D] → [R,V] (for margins and generation). */
    NDArray logits(Weights w, NDArray x) {
        return linear(rmsNorm(x, w.get("model.norm.weight")), w, "lm_head");                    // [R,V]
    }

    private NDArray rmsNorm(NDArray x, NDArray weight) {
        NDArray x32 = x.toType(DataType.FLOAT32, false);                                          // [..,D] norm in fp32
        NDArray inverseRms = x32.square().mean(new int[] {-1}, true).add(config.rmsNormEps()).pow(-0.5); // [..,1]
        return weight.mul(x32.mul(inverseRms).toType(dtype, false));                             // [..,D]
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
            return x.mul(cos).add(rotated.mul(sin));                                             // [B,*,T,E]
        }
    }
}
