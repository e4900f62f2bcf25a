package io.dtm.engine;

import ai.djl.ndarray.NDArray;

/**
 * One decoder layer's tensors, looked up by name once at load: its two RMSNorm weights and its seven linear
 * components. A trial resolves its compressed copies into a layer once ({@link #with}), not by name on every op.
 */
record LayerWeights(NDArray inputNorm, Linear q, Linear k, Linear v, Linear o, NDArray postNorm, Linear gate,
                    Linear up, Linear down) {

    /** A linear component: weight [out,in] and its bias [out], or null where the config has none. */
    record Linear(NDArray weight, NDArray bias) {
        Linear withWeight(NDArray w) {
            return new Linear(w, bias);
        }
    }

    /** The component called {@code local} ({@code self_attn.q_proj} ... {@code mlp.down_proj}). */
    Linear component(String local) {
        return switch (local) {
            case "self_attn.q_proj" -> q;
            case "self_attn.k_proj" -> k;
            case "self_attn.v_proj" -> v;
            case "self_attn.o_proj" -> o;
            case "mlp.gate_proj" -> gate;
            case "mlp.up_proj" -> up;
            case "mlp.down_proj" -> down;
            default -> throw new IllegalArgumentException("unknown layer component '" + local + "'");
        };
    }

    /** This layer with the weight of {@code local} replaced (its bias kept). */
    LayerWeights with(String local, NDArray weight) {
        return switch (local) {
            case "self_attn.q_proj" -> new LayerWeights(inputNorm, q.withWeight(weight), k, v, o, postNorm, gate, up, down);
            case "self_attn.k_proj" -> new LayerWeights(inputNorm, q, k.withWeight(weight), v, o, postNorm, gate, up, down);
            case "self_attn.v_proj" -> new LayerWeights(inputNorm, q, k, v.withWeight(weight), o, postNorm, gate, up, down);
            case "self_attn.o_proj" -> new LayerWeights(inputNorm, q, k, v, o.withWeight(weight), postNorm, gate, up, down);
            case "mlp.gate_proj" -> new LayerWeights(inputNorm, q, k, v, o, postNorm, gate.withWeight(weight), up, down);
            case "mlp.up_proj" -> new LayerWeights(inputNorm, q, k, v, o, postNorm, gate, up.withWeight(weight), down);
            case "mlp.down_proj" -> new LayerWeights(inputNorm, q, k, v, o, postNorm, gate, up, down.withWeight(weight));
            default -> throw new IllegalArgumentException("unknown layer component '" + local + "'");
        };
    }
}
