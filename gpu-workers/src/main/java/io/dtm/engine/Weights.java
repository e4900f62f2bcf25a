package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import java.util.Map;

/** Tensors by their Hugging Face name. A trial sees the base weights through an overlay of its compressed ones. */
@FunctionalInterface
public interface Weights {

    /** The tensor called {@code name}, or null if the checkpoint has none (an absent optional bias). */
    NDArray get(String name);

    /** This set with some tensors replaced; the base is never modified, so a trial is undone by dropping the overlay. */
    default Weights with(Map<String, NDArray> replaced) {
        if (replaced.isEmpty()) {
            return this;
        }
        return name -> {
            NDArray r = replaced.get(name);
            return r != null ? r : get(name);
        };
    }
}
