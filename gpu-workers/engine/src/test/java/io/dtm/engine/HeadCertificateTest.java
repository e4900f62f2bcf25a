package io.dtm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.io.IOException;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The LM-head certificate against the naive reference: every logit of W·h' computed in double precision in Java.
 * A proven row must keep its reference token (soundness, on every row of every perturbation); and the certificate must
 * prove most rows when the perturbation is small, or the fast path gains nothing from it.
 */
class HeadCertificateTest {

    private static final int V = 300;
    private static final int D = 16;
    private static final int R = 400;

    @Test
    void provenRowsKeepTheirReferenceTokenAndSmallChangesAreProven() throws IOException {
        Random random = new Random(5);
        float[] w = gaussian(random, V * D);
        float[] h = gaussian(random, R * D);
        int[] refs = new int[R];
        for (int r = 0; r < R; r++) {
            refs[r] = argmax(w, h, r);
        }
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
             Scalars scalars = new Scalars(manager);
             NDManager owner = manager.newSubManager()) {
            LlamaModel model = new LlamaModel(LlamaConfig.read(TestData.tinyDir()), manager, DataType.FLOAT32, scalars);
            NDArray head = manager.create(w, new Shape(V, D));
            HeadCertificate certificate;
            try (NDScope scope = new NDScope()) {
                NDArray base = manager.create(h, new Shape(R, D));
                NDArray ids = manager.create(java.util.Arrays.stream(refs).asLongStream().toArray(), new Shape(R));
                certificate = HeadCertificate.build(model, head, base, ids, owner);
            }
            double[] provenShare = new double[4];
            double[] scales = {0, 1e-3, 1e-2, 1};
            for (int s = 0; s < scales.length; s++) {
                float[] changed = h.clone();
                float[] noise = gaussian(random, R * D);
                for (int i = 0; i < changed.length; i++) {
                    changed[i] += (float) (scales[s] * noise[i]);
                }
                boolean[] proven;
                try (NDScope scope = new NDScope()) {
                    proven = certificate.certify(manager.create(changed, new Shape(R, D))).toBooleanArray();
                }
                int count = 0;
                for (int r = 0; r < R; r++) {
                    if (proven[r]) {
                        count++;
                        assertEquals(refs[r], argmax(w, changed, r), "row " + r + " at scale " + scales[s]);
                    }
                }
                provenShare[s] = (double) count / R;
            }
            assertTrue(provenShare[0] > 0.95, "unchanged rows are proven unless their own margin is a near-tie: "
                    + provenShare[0]);
            assertTrue(provenShare[1] > 0.8, "a 1e-3 perturbation keeps most rows proven: " + provenShare[1]);
            assertTrue(provenShare[3] < provenShare[1], "a large perturbation proves fewer rows");
        }
    }

    private static int argmax(float[] w, float[] h, int row) {
        int best = 0;
        double bestLogit = Double.NEGATIVE_INFINITY;
        for (int v = 0; v < V; v++) {
            double z = 0;
            for (int d = 0; d < D; d++) {
                z += (double) w[v * D + d] * h[row * D + d];
            }
            if (z > bestLogit) {
                bestLogit = z;
                best = v;
            }
        }
        return best;
    }

    private static float[] gaussian(Random random, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) random.nextGaussian();
        }
        return out;
    }
}
