package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import io.dtm.schemas.CompressionSpec;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The global magnitude baseline of dtm-spec ("Target allocation"): one threshold over all the given components
 * together, zeroing the {@code round(T · Σ n_c)} smallest |W| of all, ties by component order then flat index.
 *
 * <p>Within one component the entries that go are all those below the threshold t and, of those equal to t, the first
 * by flat index: exactly {@code prune(k_c / n_c)} of that component, k_c its share. So the baseline is a schedule like
 * any other. t is the k-th smallest |W| of all, found by bisection on float32 bit patterns (which order like the
 * non-negative values they encode), counting on each weight's device: nothing is concatenated or copied to the host.
 */
final class GlobalMagnitude {

    private GlobalMagnitude() {}

    static Map<String, CompressionSpec> schedule(ModelWeights weights, double target, List<String> components) {
        if (!(target > 0 && target < 1)) {
            throw new IllegalArgumentException("the target sparsity must be within (0, 1), got " + target);
        }
        if (components.isEmpty()) {
            throw new IllegalArgumentException("the global baseline needs at least one component");
        }
        long total = components.stream().mapToLong(c -> weights.component(c).size()).sum();
        long k = (long) Math.rint(target * total);
        try (NDScope scope = new NDScope()) {
            List<NDArray> magnitudes = components.stream()
                    .map(c -> weights.component(c).toType(DataType.FLOAT32, false).abs()).toList();
            // the smallest bit pattern b with #{|W| ≤ float(b)} ≥ k: the k-th smallest magnitude
            int lo = 0;
            int hi = Float.floatToRawIntBits(Float.MAX_VALUE);
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (count(magnitudes, Float.intBitsToFloat(mid), true) >= k) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            float t = Float.intBitsToFloat(lo);
            long need = k - count(magnitudes, t, false);
            Map<String, CompressionSpec> schedule = new LinkedHashMap<>();
            for (int i = 0; i < components.size(); i++) {
                NDArray a = magnitudes.get(i);
                long below = a.lt(t).sum().getLong();
                long ties = a.eq(t).sum().getLong();
                long taken = Math.min(need, ties);
                need -= taken;
                schedule.put(components.get(i), CompressionSpec.prune((double) (below + taken) / a.size()));
            }
            return schedule;
        }
    }

    /** How many magnitudes of all components are at most (or below) {@code t}: one read-back for all of them. */
    private static long count(List<NDArray> magnitudes, float t, boolean inclusive) {
        NDArray sum = null;
        for (NDArray a : magnitudes) {
            NDArray c = (inclusive ? a.lte(t) : a.lt(t)).sum();
            sum = sum == null ? c : sum.add(c);
        }
        return sum.getLong();
    }
}
