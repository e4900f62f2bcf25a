package io.dtm.engine;

import io.dtm.schemas.CompressionSpec;
import java.util.Arrays;

/**
 * The compressions of dtm-spec applied to a weight matrix {@code W [out, in]} held row-major in a float array: the
 * naive, plain-Java reference the device compressors ({@link Compressor}) are tested against, bit for bit.
 */
public final class ReferenceCompression {

    private ReferenceCompression() {}

    public static float[] apply(CompressionSpec spec, float[] w, int rows, int cols) {
        return apply(spec, w, rows, cols, null);
    }

    /** A chain of steps in order; {@code norms} [cols] are the input norms Wanda weighs by (else unused). */
    public static float[] apply(CompressionSpec spec, float[] w, int rows, int cols, float[] norms) {
        if ((long) rows * cols != w.length) {
            throw new IllegalArgumentException("matrix of " + w.length + " values is not " + rows + " x " + cols);
        }
        float[] out = w;
        for (CompressionSpec.Step step : spec.steps()) {
            if (step instanceof CompressionSpec.Prune p) {
                out = prune(out, p.sparsity());
            } else if (step instanceof CompressionSpec.Int8Rowwise) {
                out = int8Rowwise(out, rows, cols);
            } else if (step instanceof CompressionSpec.NM nm) {
                out = nm(out, rows, cols, nm.n(), nm.m());
            } else if (step instanceof CompressionSpec.Int4Group g) {
                out = int4Group(out, rows, cols, g.group());
            } else if (step instanceof CompressionSpec.Wanda wanda) {
                out = wanda(out, rows, cols, wanda.sparsity(), norms);
            }
        }
        return out;
    }

    /** In each row, in each group of M columns, the N entries of smallest |W| zeroed, ties by ascending column. */
    public static float[] nm(float[] w, int rows, int cols, int n, int m) {
        if (cols % m != 0) {
            throw new IllegalArgumentException("input dimension " + cols + " is not a multiple of " + m);
        }
        float[] out = w.clone();
        for (int g = 0; g < w.length; g += m) {
            zeroSmallest(out, g, m, n, i -> Math.abs(w[i]));
        }
        return out;
    }

    /** Symmetric absmax int4 per group of G columns: scale = max|W|/7 (1 for a zero group), rint, clamp ±7. */
    public static float[] int4Group(float[] w, int rows, int cols, int group) {
        if (cols % group != 0) {
            throw new IllegalArgumentException("input dimension " + cols + " is not a multiple of " + group);
        }
        float[] out = new float[w.length];
        for (int g = 0; g < w.length; g += group) {
            float max = 0f;
            for (int i = g; i < g + group; i++) {
                max = Math.max(max, Math.abs(w[i]));
            }
            float scale = max == 0f ? 1f : max / 7f;
            for (int i = g; i < g + group; i++) {
                out[i] = Math.max(-7f, Math.min(7f, (float) Math.rint(w[i] / scale))) * scale;
            }
        }
        return out;
    }

    /** Per row the round(s·in) entries of smallest |W_rc|·norm_c (float32) zeroed, ties by ascending column. */
    public static float[] wanda(float[] w, int rows, int cols, double sparsity, float[] norms) {
        int k = (int) Math.rint(sparsity * cols);
        float[] out = w.clone();
        for (int r = 0; r < rows; r++) {
            zeroSmallest(out, r * cols, cols, k, i -> Math.abs(w[i]) * norms[i % cols]);
        }
        return out;
    }

    /** Of {@code count} entries from {@code start}, the {@code k} of smallest score set to +0, ties by position. */
    private static void zeroSmallest(float[] out, int start, int count, int k,
                                     java.util.function.IntToDoubleFunction score) {
        Integer[] order = new Integer[count];
        for (int j = 0; j < count; j++) {
            order[j] = start + j;
        }
        // a stable sort by score keeps ties in position order; scores are float32 values, compared exactly
        java.util.Arrays.sort(order, java.util.Comparator.comparingDouble(i -> (float) score.applyAsDouble(i)));
        for (int j = 0; j < Math.min(k, count); j++) {
            out[order[j]] = 0f;
        }
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
        // (|w| bits, index) pairs packed in a long: for non-negative floats the bit pattern orders like the value, and
        // the low word makes ties fall by ascending index. The keys are distinct, so the k smallest are one exact set:
        // selecting them (linear time) instead of sorting them all takes a trial's compression from ~9 ms to ~2 ms.
        long[] keys = new long[w.length];
        for (int i = 0; i < w.length; i++) {
            keys[i] = ((long) Float.floatToRawIntBits(Math.abs(w[i])) << 32) | i;
        }
        int count = (int) Math.min(k, keys.length);
        selectSmallest(keys, count);
        for (int j = 0; j < count; j++) {
            out[(int) keys[j]] = 0f;
        }
        return out;
    }

    /** Reorders distinct {@code keys} so that the {@code k} smallest come first, in any order (quickselect). */
    static void selectSmallest(long[] keys, int k) {
        int lo = 0;
        int hi = keys.length - 1;
        while (k > lo && k <= hi) {
            // median of three keeps sorted or reversed input linear
            int mid = (lo + hi) >>> 1;
            long pivot = median(keys[lo], keys[mid], keys[hi]);
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (keys[i] < pivot) {
                    i++;
                }
                while (keys[j] > pivot) {
                    j--;
                }
                if (i <= j) {
                    long t = keys[i];
                    keys[i++] = keys[j];
                    keys[j--] = t;
                }
            }
            // now keys[lo..j] ≤ pivot ≤ keys[i..hi], and keys[j+1..i-1] == pivot
            if (k <= j) {
                hi = j;
            } else if (k >= i) {
                lo = i;
            } else {
                return;
            }
        }
    }

    private static long median(long a, long b, long c) {
        return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
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
