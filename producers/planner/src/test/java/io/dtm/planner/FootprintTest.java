package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.avro.SweepRequest;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static io.dtm.planner.TestSweeps.component;
import static io.dtm.planner.TestSweeps.entry;
import static io.dtm.planner.TestSweeps.sweep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class FootprintTest {

    @Test
    void aComponentCountsItsZerosAndTheBitsOfWhatIsLeft() {
        assertEquals(new Footprint(0, 16), Footprint.of(null, 16), "untouched bf16");
        assertEquals(new Footprint(0, 32), Footprint.of(null, 32), "untouched float32");
        assertEquals(new Footprint(0, 8), Footprint.of(CompressionSpec.int8(), 16));
        assertEquals(new Footprint(0, 4.125), Footprint.of(CompressionSpec.int4g(128), 16));
        assertEquals(new Footprint(0.5, 8), Footprint.of(CompressionSpec.nm(2, 4), 16));
        assertEquals(new Footprint(0.5, 8), Footprint.of(CompressionSpec.wanda(0.5), 16));
        assertEquals(new Footprint(0.75, 1.03125), Footprint.of(CompressionSpec.parse("prune:0.75+int4g:128"), 16));
        assertEquals(new Footprint(0.5, 2.0625), Footprint.of(CompressionSpec.parse("nm:2:4+int4g:128"), 16));
    }

    @Test
    void aScheduleIsWeightedByParameters() {
        // a 100, b 300, c 600 parameters
        SweepRequest s = sweep().setSourceBits(16).build();
        Footprint f = Footprint.of(s, List.of(entry("b", "nm:2:4"), entry("c", "int4g:5")));
        assertEquals((300 * 0.5) / 1000, f.sparsity(), 1e-12);
        assertEquals((100 * 16 + 300 * 8 + 600 * (4 + 16.0 / 5)) / 1000, f.bitsPerWeight(), 1e-12);
        assertEquals(new Footprint(0, 16), Footprint.of(s, List.of()));
        SweepRequest full = sweep().setComponents(new ArrayList<>(List.of(component("a", 3)))).build();
        assertEquals(new Footprint(1.0, 0), Footprint.of(full, List.of(entry("a", "prune:1.0"))));
    }

    @Test
    void outOfRangeFiguresAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Footprint(1.5, 8));
        assertThrows(IllegalArgumentException.class, () -> new Footprint(0.5, Double.NaN));
    }
}
