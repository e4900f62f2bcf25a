package io.dtm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.dtm.schemas.CompressionSpec;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The device compressors against the plain-Java reference of the spec, bit for bit on float32: on random matrices
 * full of ties (few distinct magnitudes, both signs, zeros and negative zeros), at sparsities that hit the tie value.
 * The same ops run on a GPU: {@code -Ddtm.test.device=gpu} runs this test there ({@code gpu-workers/gpu/bench.sh tests}).
 */
class CompressorTest {

    private static NDManager manager;
    private static Scalars scalars;

    @BeforeAll
    static void open() {
        manager = NDManager.newBaseManager(TestData.resolvedDevice(), "PyTorch");
        scalars = new Scalars(manager);
    }

    @AfterAll
    static void close() {
        scalars.close();
        manager.close();
    }

    /** Values from a few magnitudes, so most entries tie with others; some exact zeros of either sign. */
    static float[] tieHeavy(Random random, int n, int distinct) {
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            int level = random.nextInt(distinct + 1);
            float magnitude = level == 0 ? 0f : level * 0.125f;
            w[i] = random.nextBoolean() ? magnitude : -magnitude;
        }
        return w;
    }

    private static float[] onDevice(CompressionSpec spec, float[] w, int rows, int cols) {
        return onDevice(spec, w, rows, cols, null);
    }

    private static float[] onDevice(CompressionSpec spec, float[] w, int rows, int cols, float[] norms) {
        try (NDScope scope = new NDScope()) {
            NDArray weight = manager.create(w, new Shape(rows, cols));
            NDArray n = norms == null ? null : manager.create(norms);
            return Compressor.of(spec, scalars).apply(weight, n).toType(DataType.FLOAT32, false).toFloatArray();
        }
    }

    private static void assertBits(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual[i]),
                    what + ": element " + i + " expected " + expected[i] + " got " + actual[i]);
        }
    }

    @Test
    void pruneOnTheDeviceEqualsTheReferenceOnTieHeavyMatrices() {
        Random random = new Random(11);
        for (int trial = 0; trial < 200; trial++) {
            int rows = 1 + random.nextInt(24);
            int cols = 1 + random.nextInt(40);
            float[] w = tieHeavy(random, rows * cols, 1 + random.nextInt(6));
            double s = List.of(0.0, 0.1, 0.25, 0.5, 0.9, 1.0).get(random.nextInt(6));
            s = random.nextBoolean() ? s : random.nextDouble();
            CompressionSpec spec = CompressionSpec.prune(s);
            assertBits(ReferenceCompression.apply(spec, w, rows, cols), onDevice(spec, w, rows, cols),
                    "prune " + s + " of " + rows + "x" + cols);
        }
    }

    @Test
    void pruneOnTheDeviceEqualsTheReferenceOnGaussianMatrices() {
        Random random = new Random(12);
        float[] w = new float[64 * 96];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        for (double s : new double[] {0.05, 0.5, 0.95}) {
            CompressionSpec spec = CompressionSpec.prune(s);
            assertBits(ReferenceCompression.apply(spec, w, 64, 96), onDevice(spec, w, 64, 96), "prune " + s);
        }
    }

    @Test
    void int8OnTheDeviceEqualsTheReference() {
        Random random = new Random(13);
        for (int trial = 0; trial < 100; trial++) {
            int rows = 1 + random.nextInt(16);
            int cols = 1 + random.nextInt(48);
            float[] w = trial % 2 == 0 ? tieHeavy(random, rows * cols, 1 + random.nextInt(5)) : new float[rows * cols];
            if (trial % 2 == 1) {
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(5) - 2));
                }
                java.util.Arrays.fill(w, 0, Math.min(cols, w.length), 0f); // a zero row keeps scale 1
            }
            CompressionSpec spec = CompressionSpec.int8();
            assertBits(ReferenceCompression.apply(spec, w, rows, cols), onDevice(spec, w, rows, cols),
                    "int8 of " + rows + "x" + cols);
        }
    }

    @Test
    void theBaseWeightIsNeverModified() {
        float[] w = tieHeavy(new Random(14), 12 * 8, 3);
        try (NDScope scope = new NDScope()) {
            NDArray weight = manager.create(w, new Shape(12, 8));
            for (CompressionSpec spec : List.of(CompressionSpec.prune(0.0), CompressionSpec.prune(0.5),
                    CompressionSpec.prune(1.0), CompressionSpec.int8())) {
                Compressor.of(spec, scalars).apply(weight);
                assertBits(w, weight.toFloatArray(), spec + " left the base weight");
            }
        }
    }

    @Test
    void nmOnTheDeviceEqualsTheReferenceWithTiesAndZeroGroups() {
        Random random = new Random(15);
        for (int trial = 0; trial < 150; trial++) {
            int m = List.of(2, 4, 8).get(random.nextInt(3));
            int n = random.nextInt(m + 1);
            int rows = 1 + random.nextInt(12);
            int cols = m * (1 + random.nextInt(8));
            float[] w = tieHeavy(random, rows * cols, 1 + random.nextInt(4));
            if (trial % 5 == 0) {
                java.util.Arrays.fill(w, 0, m, 0f); // an all-zero group
            }
            CompressionSpec spec = CompressionSpec.nm(n, m);
            float[] out = onDevice(spec, w, rows, cols);
            assertBits(ReferenceCompression.apply(spec, w, rows, cols), out, spec + " of " + rows + "x" + cols);
            for (int g = 0; g < out.length; g += m) {
                int zeros = 0;
                for (int i = g; i < g + m; i++) {
                    zeros += out[i] == 0f ? 1 : 0;
                }
                org.junit.jupiter.api.Assertions.assertTrue(zeros >= n, "every group of " + m + " has " + n + " zeros");
            }
        }
    }

    @Test
    void int4GroupsOnTheDeviceEqualTheReferenceAndAZeroGroupStaysZero() {
        Random random = new Random(16);
        for (int trial = 0; trial < 100; trial++) {
            int group = List.of(4, 8, 16).get(random.nextInt(3));
            int rows = 1 + random.nextInt(10);
            int cols = group * (1 + random.nextInt(6));
            float[] w = new float[rows * cols];
            for (int i = 0; i < w.length; i++) {
                w[i] = trial % 2 == 0 ? (float) random.nextGaussian() : (random.nextInt(15) - 7) * 0.5f; // exact halves
            }
            java.util.Arrays.fill(w, 0, group, 0f);
            CompressionSpec spec = CompressionSpec.int4g(group);
            float[] out = onDevice(spec, w, rows, cols);
            assertBits(ReferenceCompression.apply(spec, w, rows, cols), out, spec + " of " + rows + "x" + cols);
            for (int i = 0; i < group; i++) {
                assertEquals(0f, out[i], "a zero group (scale 1) stays zero");
            }
        }
    }

    @Test
    void wandaOnTheDeviceEqualsTheReferenceForGivenNorms() {
        Random random = new Random(17);
        for (int trial = 0; trial < 100; trial++) {
            int rows = 1 + random.nextInt(12);
            int cols = 1 + random.nextInt(40);
            float[] w = tieHeavy(random, rows * cols, 1 + random.nextInt(4));
            float[] norms = new float[cols];
            for (int c = 0; c < cols; c++) {
                norms[c] = random.nextInt(4) * 0.5f; // ties in the scores too, and zero norms
            }
            double s = random.nextDouble();
            CompressionSpec spec = CompressionSpec.wanda(s);
            assertBits(ReferenceCompression.apply(spec, w, rows, cols, norms), onDevice(spec, w, rows, cols, norms),
                    spec + " of " + rows + "x" + cols);
        }
    }

    @Test
    void chainsApplyTheirStepsInOrder() {
        Random random = new Random(18);
        for (String text : List.of("prune:0.5+int8_rowwise", "nm:2:4+int4g:8", "int8_rowwise+prune:0.3",
                "wanda:0.5+int4g:4")) {
            float[] w = new float[16 * 32];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) random.nextGaussian();
            }
            float[] norms = new float[32];
            for (int c = 0; c < 32; c++) {
                norms[c] = (float) random.nextDouble();
            }
            CompressionSpec spec = CompressionSpec.parse(text);
            assertBits(ReferenceCompression.apply(spec, w, 16, 32, norms), onDevice(spec, w, 16, 32, norms), text);
        }
    }

    @Test
    void indivisibleShapesAndMissingNormsAreNamed() {
        float[] w = new float[6 * 10];
        IllegalArgumentException nm = assertThrows(IllegalArgumentException.class,
                () -> onDevice(CompressionSpec.nm(2, 4), w, 6, 10));
        org.junit.jupiter.api.Assertions.assertTrue(nm.getMessage().contains("10") && nm.getMessage().contains("4"),
                nm.getMessage());
        IllegalArgumentException int4 = assertThrows(IllegalArgumentException.class,
                () -> onDevice(CompressionSpec.int4g(64), w, 6, 10));
        org.junit.jupiter.api.Assertions.assertTrue(int4.getMessage().contains("int4g:64"), int4.getMessage());
        IllegalArgumentException wanda = assertThrows(IllegalArgumentException.class,
                () -> onDevice(CompressionSpec.wanda(0.5), w, 6, 10));
        org.junit.jupiter.api.Assertions.assertTrue(wanda.getMessage().contains("norms"), wanda.getMessage());
    }
}
