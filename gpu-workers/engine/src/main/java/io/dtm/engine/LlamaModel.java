package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;

/**
 * The Llama decoder forward pass in DJL NDArray ops: one loop over layers {@code [from, to)} that every caller uses
 * (preparing a prompt set, scoring a trial, decoding token by token), one flat method per half-layer.
 *
 * <p>Dimension letters: B batch of prompts, T query positions, S key positions (past + new), D hidden size,
 * H query heads, K key/value heads, G = H/K query heads sharing one key/value head, E head dim, F MLP intermediate
 * size, V vocabulary, R scored rows.
 *
 * <p>Precision follows Hugging Face {@code LlamaForCausalLM}. In float32 every step is the same op as transformers', so
 * greedy tokens agree bit for bit except at numerical near-ties: RMSNorm with {@code rsqrt}, SiLU as
 * {@code x / (1 + e^-x)}, softmax in float32, rotary tables computed as {@code position · inv_freq}. In float16 the
 * steps transformers keeps in float32 stay there (its eager attention's recipe): RMSNorm (upcast, then back), the
 * rotary tables (cos/sin in float32, then cast) and the attention softmax (float32 inside the kernel, one rounding).
 * Scores are a float16 matmul scaled in float16, as there; SiLU is g·σ(g) in float16, which may differ from torch's
 * fused kernel by an ulp but reads the [B,T,F] activations twice instead of once per float32 pass (a layer's largest
 * elementwise work; measured on an H200 in NOTES.md, as is how closely float16 FDTs can agree at all).
 */
final class LlamaModel {

    final LlamaConfig config;
    final DataType dtype;
    private final Scalars scalars;
    private final NDArray invFreq;
    private final NDArray scale;
    private final int heads;
    private final int kvHeads;
    private final int headDim;

    /** The most negative float32: hides a logit or a masked key in float32 arithmetic without producing NaN. */
    static final float MASKED = -Float.MAX_VALUE;

    LlamaModel(LlamaConfig config, NDManager manager, DataType dtype, Scalars scalars) {
        this.config = config;
        this.dtype = dtype;
        this.scalars = scalars;
        this.heads = config.numHeads();
        this.kvHeads = config.numKvHeads();
        this.headDim = config.headDim();
        // rounded to the compute dtype, as torch casts a scalar operand: exact for head dims 64 and 128
        this.scale = scalars.of(1.0 / Math.sqrt(headDim), dtype);
        // inv_freq_i = 1 / θ^(2i/E) in float32, on the CPU as transformers computes it at load (a GPU's pow differs
        // in the last bit), then copied to the device
        try (NDManager cpu = NDManager.newBaseManager(ai.djl.Device.cpu(), manager.getEngine().getEngineName())) {
            NDArray exponents = cpu.arange(0, headDim, 2, DataType.INT64).toType(DataType.FLOAT32, false).div(headDim);
            NDArray inverse = cpu.full(exponents.getShape(), (float) config.ropeTheta()).pow(exponents).pow(-1);
            this.invFreq = inverse.toDevice(manager.getDevice(), true);
            this.invFreq.attach(manager);
        }
    }

    /** What one pass over the layers uses besides the weights. */
    record Pass(Rope rope, NDArray mask, KvCache cache, Queries lastLayer, Reuse entry, Tap tap) {
        /** A teacher-forced pass over right-padded sequences: all positions query, nothing reused, nothing kept. */
        static Pass of(Rope rope, NDArray mask) {
            return new Pass(rope, mask, null, null, Reuse.NONE, Tap.NONE);
        }

        /** A decoding step: new positions attend to the cache's keys and values and append their own. */
        static Pass decoding(Rope rope, NDArray mask, KvCache cache) {
            return new Pass(rope, mask, cache, null, Reuse.NONE, Tap.NONE);
        }

        Pass lastLayerOnly(Queries scored) {
            return new Pass(rope, mask, cache, scored, entry, tap);
        }

        Pass entering(Reuse reuse) {
            return new Pass(rope, mask, cache, lastLayer, reuse, tap);
        }

        Pass tapped(Tap t) {
            return new Pass(rope, mask, cache, lastLayer, entry, t);
        }
    }

    /**
     * What the pass's first layer takes from the base model instead of computing: the intermediates of the matrices a
     * trial left unchanged there, and whether it starts at the MLP half (x is then the base mid-layer state, already
     * at the scored rows when that layer is the last).
     */
    record Reuse(Attention attention, Mlp mlp, boolean midLayer) {
        static final Reuse NONE = new Reuse(Attention.NONE, Mlp.NONE, false);
    }

    /**
     * Receives every layer's input, attention half (null when skipped) and MLP half, how a prompt set fills its cache;
     * and the input rows of its linear components where they are computed, how Wanda's input norms are collected.
     */
    @FunctionalInterface
    interface Tap {
        Tap NONE = (l, input, attention, mlp) -> {};

        void layer(int l, NDArray input, Attention attention, Mlp mlp);

        /** The input of layer l's linear components at {@code site}: [B,T',in]. */
        default void linearInput(int l, Site site, NDArray x) {}
    }

    /** Where a linear component takes its input, in the order data flows through a layer. */
    enum Site {
        /** q, k and v: the normed layer input. */
        ATTENTION,
        /** o: the attention context. */
        CONTEXT,
        /** gate and up: the normed mid-layer state. */
        MLP,
        /** down: silu(gate)·up. */
        ACTIVATION;

        /** The site of a component's local name ({@code self_attn.q_proj} ... {@code mlp.down_proj}). */
        static Site of(String local) {
            return switch (local) {
                case "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" -> ATTENTION;
                case "self_attn.o_proj" -> CONTEXT;
                case "mlp.gate_proj", "mlp.up_proj" -> MLP;
                case "mlp.down_proj" -> ACTIVATION;
                default -> throw new IllegalArgumentException("unknown layer component '" + local + "'");
            };
        }
    }

    /** Token embeddings: ids [B,T] → x [B,T,D]. */
    NDArray embed(ModelWeights w, NDArray ids) {
        return w.embed().get(ids);
    }

    /**
     * Decoder layers {@code [from, to)} over hidden states x [B,T,D] → [B,T',D] (T' = T, or the last layer's query
     * count when {@code pass.lastLayer()} restricts it: no position attends to the last layer's output).
     */
    NDArray layers(ModelWeights w, NDArray x, int from, int to, Pass pass) {
        for (int l = from; l < to; l++) {
            LayerWeights layer = w.layers().get(l);
            Queries queries = l == config.numLayers() - 1 ? pass.lastLayer() : null;
            Reuse reuse = l == from ? pass.entry() : Reuse.NONE;
            Attention a = null;
            NDArray mid;
            if (reuse.midLayer()) {
                mid = x;                                                                         // [B,T',D] base mid state
            } else {
                a = attention(layer, l, x, pass, reuse.attention(), queries);
                mid = a.out();                                                                   // [B,T',D]
            }
            Mlp m = mlp(layer, l, mid, pass, reuse.mlp());
            pass.tap().layer(l, x, a, m);
            x = m.out();                                                                         // [B,T',D]
        }
        return x;
    }

    /**
     * The first half of decoder layer l, x + o_proj(attention(rmsnorm(x))), with its intermediates. Those given in
     * {@code reuse} are taken instead of computed: a trial entering at this layer passes the base model's for the
     * matrices it left unchanged (x is then the base input), so an o_proj trial, say, skips the projections and the
     * attention itself. With {@code queries}, only those positions query (keys and values still cover all T).
     */
    Attention attention(LayerWeights w, int l, NDArray x, Pass pass, Attention reuse, Queries queries) {
        long b = x.getShape().get(0);
        long t = x.getShape().get(1);
        long tq = queries == null ? t : queries.count();                                        // T' query positions
        int groups = heads / kvHeads;
        NDArray q = reuse.q();
        NDArray k = reuse.k();
        NDArray v = reuse.v();
        NDArray context = reuse.context();
        if (context == null) {
            NDArray h = rmsNorm(x, w.inputNorm());                                               // [B,T,D]
            pass.tap().linearInput(l, Site.ATTENTION, h);
            if (q == null) {
                NDArray hq = queries == null ? h : queries.of(h);                                // [B,T',D]
                q = linear(hq, w.q()).reshape(b, tq, heads, headDim).transpose(0, 2, 1, 3);      // [B,H,T',E]
                q = (queries == null ? pass.rope() : queries.rope()).rotate(q);                  // [B,H,T',E]
            }
            if (k == null) {
                k = linear(h, w.k()).reshape(b, t, kvHeads, headDim).transpose(0, 2, 1, 3);      // [B,K,T,E]
                k = pass.rope().rotate(k);                                                       // [B,K,T,E]
            }
            if (v == null) {
                v = linear(h, w.v()).reshape(b, t, kvHeads, headDim).transpose(0, 2, 1, 3);      // [B,K,T,E]
            }
            NDArray keys = pass.cache() == null ? k : pass.cache().appendKeys(l, k);            // [B,K,S,E] past ++ new
            NDArray values = pass.cache() == null ? v : pass.cache().appendValues(l, v);        // [B,K,S,E]
            NDArray qg = q.reshape(b, kvHeads, groups, tq, headDim);                             // [B,K,G,T',E] by kv head
            NDArray scores = scores(qg, keys.expandDims(2));                                     // [B,K,G,T',S] q·k/√E, fp32
            NDArray mask = queries == null ? pass.mask() : queries.mask();
            NDArray probs = scores.addi(mask).softmax(-1);                                       // [B,K,G,T',S] masked → 0
            context = probs.matMul(values.expandDims(2))                                         // [B,K,G,T',E]
                    .reshape(b, heads, tq, headDim).transpose(0, 2, 1, 3).reshape(b, tq, (long) heads * headDim); // [B,T',H·E]
        }
        pass.tap().linearInput(l, Site.CONTEXT, context);
        NDArray residual = queries == null ? x : queries.of(x);                                  // [B,T',D]
        NDArray out = linear(context, w.o()).addi(residual);                                     // [B,T',D]
        return new Attention(q, k, v, context, out);
    }

    /** Attention scores q·kᵀ/√E in the compute dtype: qg [B,K,G,T',E], keys [B,K,1,S,E] → [B,K,G,T',S]. */
    private NDArray scores(NDArray qg, NDArray keys) {
        return qg.matMul(keys.swapAxes(3, 4)).muli(scale);                                       // [B,K,G,T',S]
    }

    /** The second half of decoder layer l, x + down(silu(gate(rmsnorm(x))) · up(rmsnorm(x))), with intermediates. */
    Mlp mlp(LayerWeights w, int l, NDArray x, Pass pass, Mlp reuse) {
        NDArray gate = reuse.gate();
        NDArray up = reuse.up();
        if (gate == null || up == null) {
            NDArray h = rmsNorm(x, w.postNorm());                                                // [B,T,D]
            pass.tap().linearInput(l, Site.MLP, h);
            if (gate == null) {
                gate = silu(linear(h, w.gate()));                                                // [B,T,F] silu(gate)
            }
            if (up == null) {
                up = linear(h, w.up());                                                          // [B,T,F]
            }
        }
        NDArray act = gate.mul(up);                                                              // [B,T,F] silu(gate)·up
        pass.tap().linearInput(l, Site.ACTIVATION, act);
        NDArray out = linear(act, w.down()).addi(x);                                             // [B,T,D] residual
        return new Mlp(gate, up, out);
    }

    /** silu(g) = g·σ(g): in float32 as torch's kernel computes it, g / (1 + e^-g); in float16 as g·σ(g). */
    private NDArray silu(NDArray g) {
        if (dtype == DataType.FLOAT32) {
            return g.divi(g.neg().exp().addi(scalars.f32(1f)));                                  // [B,T,F]
        }
        return g.mul(Activation.sigmoid(g));                                                     // [B,T,F]
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
     * itself on a CPU; chunks of rows stay small and reuse memory (measured: ~72 ms instead of 65-165 ms), with
     * identical bits.
     */
    private static final long HEAD_ROWS = 512;

    /**
     * The additive mask value for hidden keys in the compute dtype: its most negative finite value, as transformers
     * masks (in float16 a masked score may round to -inf; softmax still gives it weight 0).
     */
    float maskValue() {
        return dtype == DataType.FLOAT16 ? -65504f : MASKED;
    }

    /** An additive mask of {@code values} (0 or {@link #maskValue()}) as an array of the compute dtype. */
    NDArray mask(NDManager manager, float[] values, ai.djl.ndarray.types.Shape shape) {
        NDArray m = manager.create(values, shape);
        return m.toType(dtype, false);
    }

    /** Whether x holds a NaN or an infinity, as a 0-d boolean on x's device (nothing is read back here). */
    static NDArray nonFinite(NDArray x) {
        NDArray largest = x.abs().max();                                                         // []  NaN if any is
        return largest.isNaN().logicalOr(largest.isInfinite());                                  // []
    }

    /** Final RMSNorm of the rows to score: x [R,D] → h [R,D], the LM head's input. */
    NDArray finalNorm(ModelWeights w, NDArray x) {
        return rmsNorm(x, w.norm());                                                            // [R,D]
    }

    /** LM head and greedy choice: normed rows h [R,D] → token ids [R] (first max wins, as torch's argmax). */
    NDArray argmaxTokens(NDArray head, NDArray h) {
        NDList tokens = new NDList();
        for (NDArray logits : headChunks(head, h)) {                                            // [r,V] each
            tokens.add(logits.argMax(-1));                                                       // [r]
        }
        return NDArrays.concat(tokens);                                                         // [R]
    }

    /** Greedy tokens [R] and top-1 minus top-2 logit margins [R] of normed rows h [R,D], from the same logits. */
    NDList tokensAndMargins(NDArray head, NDArray h) {
        NDList tokens = new NDList();
        NDList margins = new NDList();
        for (NDArray logits : headChunks(head, h)) {                                            // [r,V]
            tokens.add(logits.argMax(-1));                                                       // [r]
            NDArray top2 = logits.topK(2, -1).get(0);                                            // [r,2]
            margins.add(top2.get(":, 0").sub(top2.get(":, 1")));                                 // [r]
        }
        return new NDList(NDArrays.concat(tokens), NDArrays.concat(margins));
    }

    /** Logits of normed rows, chunk by chunk: h [R,D] → [r,V] per chunk of at most HEAD_ROWS rows. */
    NDList headChunks(NDArray head, NDArray h) {
        long rows = h.getShape().get(0);
        NDList chunks = new NDList();
        for (long r = 0; r < rows; r += HEAD_ROWS) {
            chunks.add(linear(h.get(r + ":" + Math.min(rows, r + HEAD_ROWS)), head, null));      // [r,V]
        }
        return chunks;
    }

    /** rmsnorm(x) = x / √(mean(x²) + ε) · weight, in float32 and rounded back, as transformers' LlamaRMSNorm. */
    private NDArray rmsNorm(NDArray x, NDArray weight) {
        NDArray x32 = x.toType(DataType.FLOAT32, false);                                          // [..,D] norm in fp32
        NDArray inverseRms = x32.square().mean(new int[] {-1}, true)
                .addi(scalars.f32(config.rmsNormEps())).pow(scalars.cpuMinusHalf);                 // [..,1] rsqrt
        return x32.mul(inverseRms).toType(dtype, false).muli(weight);                            // [..,D]
    }

    private static NDArray linear(NDArray x, LayerWeights.Linear w) {
        return linear(x, w.weight(), w.bias());
    }

    private static NDArray linear(NDArray x, NDArray weight, NDArray bias) {
        return Linear.linear(x, weight, bias).singletonOrThrow();
    }

    /** Rotary cos/sin for positions [B,T] (or [1,T] when every row starts at 0), shaped to broadcast over heads. */
    Rope rope(NDArray positions) {
        NDArray freqs = positions.toType(DataType.FLOAT32, false).expandDims(2).mul(invFreq); // [B,T,E/2] position·θ_i
        NDArray angles = freqs.concat(freqs, 2);                                                  // [B,T,E] halves share angles
        return new Rope(angles.cos().toType(dtype, false).expandDims(1),                          // [B,1,T,E]
                angles.sin().toType(dtype, false).expandDims(1));                                 // [B,1,T,E]
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
