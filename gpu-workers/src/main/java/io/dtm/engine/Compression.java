package io.dtm.engine;

import io.dtm.schemas.CompressionSpec;
import java.util.Arrays;

/**
 * The compressions of dtm-spec applied to a weight matrix {@code W [out, in]} held row-major in a float array.
 * Plain Java, so the result is exact and independent of the device the trial then runs on.
 */
public final class Compression {

    private Compression() {}

    public static float[] apply(CompressionSpec spec, float[] w, int rows, int cols) {
        if ((long) rows * cols != w.length) {
            throw new IllegalArgumentException("matrix of " + w.length + " values is not " + rows + " x " + cols);
        }
        return switch (spec.kind()) {
            case PRUNE -> prune(w, spec.sparsity());
            case INT8_ROWWISE -> int8Rowwise(w, rows, cols);
        };
    }

    /**
     * Unstructured magnitude pruning: zero the {@code round(s · numel)} entries of smallest |W|, ties broken by
     * ascending flat index. {@code round} is half-to-even, as Python's.
     */
    public static float[] prune(float[] w, double sparsity) {
        long k = (long) Math.rint(sparsity * w.length);
        float[] out = w.clone();
        if (k <= 0) {
            return out;
        }
        // Sort (|w| bits, index) pairs packed in a long: for non-negative floats the bit pattern orders like the value,
        // and the low word makes ties fall by ascending index without boxing.
        long[] keys = new long[w.length];
        for (int i = 0; i < w.length; i++) {
            keys[i] = ((long) Float.floatToRawIntBits(Math.abs(w[i])) << 32) | i;
        }
        Arrays.sort(keys);
        for (int j = 0; j < Math.min(k, keys.length); j++) {
            out[(int) keys[j]] = 0f;
        }
        return out;
    }

    /**
     * Symmetric absmax int8 per output row, dequantized: scale = max|W_r·|/127 (1 for a zero row),
     * W' = clamp(rint(W/scale), -127, 127) · scale, all in float32 as the reference computes it.
     */
    public static float[] int8Rowwise(float[] w, int rows, int cols) {
        float[] out = new float[w.length];
        for (int r = 0; r < rows; r++) {
            int base = r * cols;
            float max = 0f;
            for (int c = 0; c < cols; c++) {
                max = Math.max(max, Math.abs(w[base + c]));
            }
            float scale = max == 0f ? 1f : max / 127f;
            for (int c = 0; c < cols; c++) {
                float q = (float) Math.rint(w[base + c] / scale);
                out[base + c] = Math.max(-127f, Math.min(127f, q)) * scale;
            }
        }
        return out;
    }
}
