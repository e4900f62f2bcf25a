package io.dtm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.dtm.schemas.CompressionSpec;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The global magnitude baseline against a brute-force sort of every |W| of every component. */
class GlobalMagnitudeTest {

    @Test
    void perComponentCountsAreThoseOfOneGlobalSortWithTiesByComponentThenIndex() throws IOException {
        EngineOptions cpu = new EngineOptions("cpu", "float32", 64, EngineOptions.DEFAULT_CACHE_BUDGET);
        try (DivergenceEngine engine = DivergenceEngine.load(TestData.brownDir(), cpu)) {
            List<String> components = engine.config().componentNames();
            float[][] weights = components.stream().map(engine::baseWeight).toArray(float[][]::new);
            for (double target : new double[] {0.3, 0.5, 0.7}) {
                // brute force: (|w| bits, component, index) keys sorted, the k smallest counted per component
                long total = Arrays.stream(weights).mapToLong(w -> w.length).sum();
                long[] keys = new long[(int) total];
                int at = 0;
                for (int c = 0; c < weights.length; c++) {
                    for (int i = 0; i < weights[c].length; i++) {
                        // bf16 weights widened to float32 have 16 zero low bits: the bits shifted down leave room
                        keys[at++] = ((long) (Float.floatToRawIntBits(Math.abs(weights[c][i])) >>> 16) << 40)
                                | ((long) c << 32) | i;
                    }
                }
                Arrays.sort(keys);
                long k = (long) Math.rint(target * total);
                long[] expected = new long[weights.length];
                for (int j = 0; j < k; j++) {
                    expected[(int) ((keys[j] >>> 32) & 0xff)]++;
                }
                Map<String, CompressionSpec> schedule = engine.globalMagnitudeSchedule(target, components);
                long sum = 0;
                for (int c = 0; c < weights.length; c++) {
                    CompressionSpec spec = CompressionSpec.parse(schedule.get(components.get(c)).toString());
                    long zeros = (long) Math.rint(spec.sparsity() * weights[c].length);
                    assertEquals(expected[c], zeros, components.get(c) + " at " + target);
                    sum += zeros;
                }
                assertEquals(k, sum, "the overall count is exactly round(T · Σ n_c)");
            }
            assertThrows(IllegalArgumentException.class, () -> engine.globalMagnitudeSchedule(1.0, components));
            assertThrows(IllegalArgumentException.class,
                    () -> engine.globalMagnitudeSchedule(0.5, List.of("model.layers.99.mlp.up_proj")));
        }
    }
}
