package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;

/**
 * What the engine's parts share once a model is loaded: its config, the options it runs with, the device manager that
 * owns the base weights, the forward pass, the base weights and the device constants.
 *
 * <p>{@code certify} says whether prompt sets build a {@link HeadCertificate}. It pays on a CPU, where the LM head
 * costs as much as a layer and asking which rows it proved is free; on a GPU the head over the scored rows takes about
 * a millisecond, and the certificate's per-row decision would cost a host round trip per trial.
 */
record LoadedModel(LlamaConfig config, EngineOptions options, NDManager manager, LlamaModel model,
                   ModelWeights weights, Scalars scalars, boolean certify) {

    /** Bytes per value of the compute dtype. */
    int unit() {
        return model.dtype == DataType.FLOAT16 ? 2 : 4;
    }

    /** Takes an array out of the current scope and gives it to {@code owner}, which frees it when it closes. */
    static NDArray keep(NDArray a, NDManager owner) {
        NDScope.unregister(a);
        a.attach(owner);
        return a;
    }

    /** Token ids as the int array the rest of the engine uses. */
    static int[] toInts(NDArray a) {
        long[] l = a.toLongArray();
        int[] out = new int[l.length];
        for (int i = 0; i < l.length; i++) {
            out[i] = (int) l[i];
        }
        return out;
    }

    /** Fails with a reason when a prompt plus its continuation would run past the model's position range. */
    void checkLength(int prompt, int promptTokens, int tokens) {
        if ((long) promptTokens + tokens > config.maxPositionEmbeddings()) {
            throw new IllegalArgumentException("prompt " + prompt + " has " + promptTokens + " tokens; with " + tokens
                    + " generated that is " + ((long) promptTokens + tokens) + " positions, past the model's"
                    + " max_position_embeddings of " + config.maxPositionEmbeddings());
        }
    }
}
