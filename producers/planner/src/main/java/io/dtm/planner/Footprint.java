package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.SweepRequest;

import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * What a compression leaves of weights: their share of zeros, and bits per weight with zeros free, quantized values at
 * their bits (8 for int8, 4 + 16/G for int4g:G) and the rest at the source's ({@code SweepRequest.sourceBits}, 16 for
 * bfloat16). An N:M action counts by its sparsity N/M, int8 and int4 by none, so an allocation that trades sparsity
 * between kinds compares them on one scale and reports the bits beside it.
 */
public record Footprint(double sparsity, double bitsPerWeight) {

    public Footprint {
        if (!(sparsity >= 0 && sparsity <= 1)) {
            throw new IllegalArgumentException("sparsity must be within [0, 1], got " + sparsity);
        }
        if (!(bitsPerWeight >= 0 && Double.isFinite(bitsPerWeight))) {
            throw new IllegalArgumentException("bits per weight must be finite and >= 0, got " + bitsPerWeight);
        }
    }

    /** One component under {@code compression} (null: untouched), its values otherwise stored in {@code sourceBits}. */
    public static Footprint of(CompressionSpec compression, int sourceBits) {
        return compression == null ? new Footprint(0, sourceBits)
                : new Footprint(compression.zeroShare(), compression.bitsPerWeight(sourceBits));
    }

    /** The sweep's components under {@code schedule}, each weighted by its parameters. */
    public static Footprint of(SweepRequest sweep, List<ScheduleEntry> schedule) {
        Map<String, CompressionSpec> applied = schedule.stream()
                .collect(Collectors.toMap(ScheduleEntry::getComponent, e -> CompressionSpec.parse(e.getCompression())));
        double params = 0;
        double zeros = 0;
        double bits = 0;
        for (ComponentInfo component : sweep.getComponents()) {
            Footprint f = of(applied.get(component.getName()), sweep.getSourceBits());
            params += component.getParams();
            zeros += f.sparsity() * component.getParams();
            bits += f.bitsPerWeight() * component.getParams();
        }
        // a parameter-weighted mean of values within [0, 1] may land a rounding error outside it
        return new Footprint(Math.min(1.0, zeros / params), bits / params);
    }
}
