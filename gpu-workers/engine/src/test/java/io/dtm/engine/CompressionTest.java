package io.dtm.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.schemas.CompressionSpec;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The plain-Java reference compressions of dtm-spec on small matrices, checked against values worked out by hand. */
class CompressionTest {

    private static int zeros(float[] a) {
        int n = 0;
        for (float v : a) {
            if (v == 0f) {
                n++;
            }
        }
        return n;
    }

    /** Bitwise equality, so that -0.0 vs 0.0 and NaN payloads count. */
    private static void assertBits(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, "length");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual[i]),
                    "element " + i + ": expected " + expected[i] + " got " + actual[i]);
        }
    }

    // ---------------------------------------------------------------- prune

    @Test
    void pruneTiesFallByAscendingFlatIndex() {
        // |w| = 1, 1, 1, 0.5: the 0.5 goes first, then the first of the three tied ones (index 0, not 1 or 2)
        assertArrayEquals(new float[] {0f, -1f, 1f, 0f}, ReferenceCompression.prune(new float[] {1f, -1f, 1f, 0.5f}, 0.5));
        // the tie is by magnitude: a negative value at a lower index wins the tie over a positive one
        assertArrayEquals(new float[] {0f, 1f, 1f, 0f}, ReferenceCompression.prune(new float[] {-1f, 1f, 1f, 0.5f}, 0.5));
        // three of four, ties 1,-1,1 at indices 1,2,3: indices 0 (0.5), 1 and 2 go
        assertArrayEquals(new float[] {0f, 0f, 0f, 1f}, ReferenceCompression.prune(new float[] {0.5f, 1f, -1f, 1f}, 0.75));
        // all equal: the first k by index
        assertArrayEquals(new float[] {0f, 0f, 0f, 2f, 2f, 2f},
                ReferenceCompression.prune(new float[] {2f, 2f, 2f, 2f, 2f, 2f}, 0.5));
    }

    @Test
    void pruneCountIsRoundHalfEvenOfSparsityTimesNumel() {
        float[] w = {5f, 1f, 4f, 2f, 3f};
        // 0.5 * 5 = 2.5 -> 2 (half to even, not 3): the two smallest, 1 (index 1) and 2 (index 3)
        assertArrayEquals(new float[] {5f, 0f, 4f, 0f, 3f}, ReferenceCompression.prune(w, 0.5));
        // 0.3 * 5 = 1.5 -> 2
        assertArrayEquals(new float[] {5f, 0f, 4f, 0f, 3f}, ReferenceCompression.prune(w, 0.3));
        // 0.1 * 5 = 0.5 -> 0: nothing pruned
        assertArrayEquals(w, ReferenceCompression.prune(w, 0.1));
        // 0.9 * 5 = 4.5 -> 4: only the largest survives
        assertArrayEquals(new float[] {5f, 0f, 0f, 0f, 0f}, ReferenceCompression.prune(w, 0.9));
        // 0.7 * 5 = 3.5 -> 4
        assertEquals(4, zeros(ReferenceCompression.prune(w, 0.7)));
        // 0.2 * 5 = 1
        assertArrayEquals(new float[] {5f, 0f, 4f, 2f, 3f}, ReferenceCompression.prune(w, 0.2));
        // larger: 0.25 * 10 = 2.5 -> 2, 0.35 * 10 = 3.5 -> 4, 0.45 * 10 = 4.5 -> 4
        float[] ten = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
        assertEquals(2, zeros(ReferenceCompression.prune(ten, 0.25)));
        assertEquals(4, zeros(ReferenceCompression.prune(ten, 0.45)));
        float[] pruned = ReferenceCompression.prune(ten, 0.25);
        assertArrayEquals(new float[] {10, 9, 8, 7, 6, 5, 4, 3, 0, 0}, pruned);
    }

    @Test
    void pruneZeroIsAnIdenticalCopyAndLeavesTheInputUntouched() {
        float[] w = {0.25f, -0.0f, Float.MIN_VALUE, -3f, 7.5f};
        float[] before = w.clone();
        float[] out = ReferenceCompression.prune(w, 0.0);
        assertNotSame(w, out, "s=0 must return a copy, not the input");
        assertBits(before, out);
        out[0] = 99f;
        assertBits(before, w);
        // a real pruning does not modify its input either
        ReferenceCompression.prune(w, 0.8);
        assertBits(before, w);
    }

    @Test
    void pruneOneZeroesEverything() {
        float[] w = {1f, -2f, 3f, -4f, 0.5f, 1e-30f};
        float[] out = ReferenceCompression.prune(w, 1.0);
        assertArrayEquals(new float[w.length], out);
        assertEquals(-2f, w[1], "input untouched");
    }

    @Test
    void pruneRanksNegativeValuesByMagnitude() {
        float[] w = {-0.1f, 5f, -3f, 0.2f, -10f, 1f};
        // 0.5 * 6 = 3: |-0.1|, |0.2|, |1| go; -3 and -10 stay although they are the smallest values
        assertArrayEquals(new float[] {0f, 5f, -3f, 0f, -10f, 0f}, ReferenceCompression.prune(w, 0.5));
    }

    @Test
    void pruneKeepsTheLargestMagnitudesOnARandomMatrix() {
        Random r = new Random(7);
        float[] w = new float[1000];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        float[] out = ReferenceCompression.prune(w, 0.37);
        assertEquals(370, zeros(out));
        float maxPruned = 0f;
        float minKept = Float.POSITIVE_INFINITY;
        for (int i = 0; i < w.length; i++) {
            if (out[i] == 0f) {
                maxPruned = Math.max(maxPruned, Math.abs(w[i]));
            } else {
                assertEquals(w[i], out[i], "kept values are unchanged");
                minKept = Math.min(minKept, Math.abs(w[i]));
            }
        }
        assertTrue(maxPruned <= minKept, "pruned " + maxPruned + " > kept " + minKept);
    }

    @Test
    void pruneSelectsExactlyTheEntriesAFullSortWould() {
        Random r = new Random(11);
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + r.nextInt(3000);
            float[] w = new float[n];
            int distinct = 1 + r.nextInt(trial % 2 == 0 ? 5 : 100000); // few distinct magnitudes: ties everywhere
            for (int i = 0; i < n; i++) {
                w[i] = (r.nextBoolean() ? 1 : -1) * (float) r.nextInt(distinct) / distinct;
            }
            if (trial % 10 == 0) {
                Arrays.sort(w); // sorted input must stay correct (and linear: median-of-three pivots)
            }
            double s = r.nextDouble();
            assertArrayEquals(pruneBySorting(w, s), ReferenceCompression.prune(w, s), "n=" + n + " s=" + s);
        }
    }

    /** The definition, written the slow way: sort all (|w|, index) pairs and zero the first round(s·n). */
    private static float[] pruneBySorting(float[] w, double sparsity) {
        Integer[] order = new Integer[w.length];
        for (int i = 0; i < w.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> {
            int c = Float.compare(Math.abs(w[a]), Math.abs(w[b]));
            return c != 0 ? c : Integer.compare(a, b);
        });
        float[] out = w.clone();
        long k = (long) Math.rint(sparsity * w.length);
        for (int j = 0; j < k; j++) {
            out[order[j]] = 0f;
        }
        return out;
    }

    // ---------------------------------------------------------------- int8_rowwise

    @Test
    void int8ZeroRowKeepsZerosAndOtherRowsAreUnaffected() {
        float[] w = {0f, 0f, 0f, 127f, -63.5f, 1f};
        float[] out = ReferenceCompression.int8Rowwise(w, 2, 3);
        assertBits(new float[] {0f, 0f, 0f, 127f, -64f, 1f}, out);
        for (int i = 0; i < 3; i++) {
            assertTrue(!Float.isNaN(out[i]), "zero row must not become NaN (scale 1, not 0)");
        }
    }

    @Test
    void int8RoundsHalfToEven() {
        // max 127 -> scale exactly 1, so w/scale is exactly w and the .5 cases are exact ties
        float[] w = {127f, 2.5f, 3.5f, -2.5f, 0.5f, 1.5f, -0.5f, 126.5f};
        assertBits(new float[] {127f, 2f, 4f, -2f, 0f, 2f, -0f, 126f}, ReferenceCompression.int8Rowwise(w, 1, w.length));
        // max 254 -> scale exactly 2: 5/2 = 2.5 -> 2 -> 4, 7/2 = 3.5 -> 4 -> 8, -1/2 = -0.5 -> -0 -> -0
        float[] w2 = {254f, 5f, 7f, -1f, -3f};
        assertBits(new float[] {254f, 4f, 8f, -0f, -4f}, ReferenceCompression.int8Rowwise(w2, 1, w2.length));
    }

    @Test
    void int8ValuesAreIntegerMultiplesOfTheRowScale() {
        Random r = new Random(11);
        int rows = 5;
        int cols = 37;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * (1 + i / cols));
        }
        float[] out = ReferenceCompression.int8Rowwise(w, rows, cols);
        for (int row = 0; row < rows; row++) {
            float max = 0f;
            int argmax = -1;
            for (int c = 0; c < cols; c++) {
                if (Math.abs(w[row * cols + c]) > max) {
                    max = Math.abs(w[row * cols + c]);
                    argmax = row * cols + c;
                }
            }
            float scale = max / 127f;
            // the row's largest magnitude maps to exactly ±127 · scale
            assertEquals(Math.signum(w[argmax]) * 127f * scale, out[argmax], 0f, "row " + row + " max element");
            for (int c = 0; c < cols; c++) {
                int i = row * cols + c;
                float q = out[i] / scale;
                double rq = Math.rint(w[i] / scale);
                assertEquals((float) rq * scale, out[i], 0f, "element " + i);
                assertTrue(Math.abs(rq) <= 127, "q within int8 range at " + i);
                assertTrue(Math.abs(q - Math.rint(q)) < 1e-3, "not a multiple of the scale at " + i);
                assertTrue(Math.abs(out[i] - w[i]) <= scale * 0.5f * (1 + 1e-5f), "error above half a step at " + i);
            }
        }
    }

    @Test
    void int8NegativeMaximumMapsToMinus127() {
        float[] w = {0.3f, -0.7f, 0.1f};
        float[] out = ReferenceCompression.int8Rowwise(w, 1, 3);
        float scale = 0.7f / 127f;
        assertEquals(-127f * scale, out[1], 0f);
        assertEquals((float) Math.rint(0.3f / scale) * scale, out[0], 0f);
        assertEquals(54f * scale, out[0], 0f, "0.3/0.7*127 = 54.43 -> 54");
        assertEquals(18f * scale, out[2], 0f, "0.1/0.7*127 = 18.14 -> 18");
    }

    @Test
    void int8RowsAreQuantizedIndependently() {
        float[] rowA = {1f, -0.25f, 0.125f, 0.003f};
        float[] rowB = {1000f, 3f, -999f, 0.5f};
        float[] both = new float[8];
        System.arraycopy(rowA, 0, both, 0, 4);
        System.arraycopy(rowB, 0, both, 4, 4);
        float[] out = ReferenceCompression.int8Rowwise(both, 2, 4);
        float[] a = ReferenceCompression.int8Rowwise(rowA, 1, 4);
        float[] b = ReferenceCompression.int8Rowwise(rowB, 1, 4);
        float[] expected = new float[8];
        System.arraycopy(a, 0, expected, 0, 4);
        System.arraycopy(b, 0, expected, 4, 4);
        assertBits(expected, out);
        // row A is not flattened by row B's larger scale: its small entries survive
        assertTrue(out[1] != 0f && out[2] != 0f);
        // the grouping into rows matters: as 2 rows of 4, 0.003 is below half of row A's step (1/127) and becomes 0;
        // as 4 rows of 2 it shares a row with 0.125 and survives
        assertEquals(0f, out[3]);
        assertTrue(ReferenceCompression.int8Rowwise(both, 4, 2)[3] != 0f);
    }

    @Test
    void int8DoesNotModifyItsInput() {
        float[] w = {0.33f, -1.7f, 2.2f, 0f};
        float[] before = w.clone();
        ReferenceCompression.int8Rowwise(w, 2, 2);
        assertBits(before, w);
    }

    // ---------------------------------------------------------------- apply

    @Test
    void applyDispatchesOnTheSpec() {
        float[] w = {0.5f, -2f, 0.1f, 3f, -0.2f, 1f};
        assertBits(ReferenceCompression.prune(w, 0.5), ReferenceCompression.apply(CompressionSpec.prune(0.5), w, 2, 3));
        assertBits(ReferenceCompression.int8Rowwise(w, 2, 3), ReferenceCompression.apply(CompressionSpec.int8(), w, 2, 3));
        assertBits(ReferenceCompression.int8Rowwise(w, 3, 2), ReferenceCompression.apply(CompressionSpec.int8(), w, 3, 2));
    }

    @Test
    void applyRejectsAShapeThatDoesNotMatch() {
        float[] w = new float[6];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ReferenceCompression.apply(CompressionSpec.int8(), w, 2, 4));
        assertTrue(e.getMessage().contains("6") && e.getMessage().contains("2 x 4"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ReferenceCompression.apply(CompressionSpec.prune(0.5), w, 7, 1));
    }
}
