package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import io.dtm.schemas.CompressionSpec;

/**
 * A compression of dtm-spec ("Compressions") as tensor ops on the weight's own device, CPU or GPU: a trial's weight
 * never crosses to the host, and nothing in {@link #apply} waits for the device. Each kind computes in float32 on the
 * compute-dtype weight (widening is exact) and rounds the result back once, so on float32 weights it is bit-identical
 * to the spec's definition (tested against a plain-Java reference on matrices full of ties).
 *
 * <p>A new kind is one more implementation and one more case in {@link #of}.
 */
sealed interface Compressor permits MagnitudePrune, Int8Rowwise {

    /** The compressor a validated spec names. */
    static Compressor of(CompressionSpec spec, Scalars scalars) {
        return switch (spec.kind()) {
            case PRUNE -> new MagnitudePrune(spec.sparsity(), scalars);
            case INT8_ROWWISE -> new Int8Rowwise(scalars);
        };
    }

    /**
     * W [out,in] → W' of the same shape, dtype and device. Runs inside the caller's NDScope: the temporaries go with
     * it, and the caller keeps the result.
     */
    NDArray apply(NDArray w);
}
