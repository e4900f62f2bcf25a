package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static io.dtm.planner.TestSweeps.sweep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KindTest {

    @Test
    void kindsParseToTheirCanonicalText() {
        assertEquals(List.of("prune", "wanda", "nm:2:4", "int4g:128", "int8_rowwise", "int8_rowwise"),
                List.of("prune", " Wanda", "nm:2:4", "int4g:128", "int8_rowwise", "int8").stream()
                        .map(k -> Kind.parse(k).text()).toList());
        assertTrue(Kind.parse("int4g:128").quantizes());
        assertFalse(Kind.parse("nm:2:4").quantizes());
        assertFalse(Kind.parse("wanda").quantizes());
    }

    @Test
    void aSparsityAChainOrAnUnknownKindIsRefusedSayingWhy() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Kind.parse("prune:0.5")).getMessage()
                .contains("prune step"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Kind.parse("nm:2:4+int8")).getMessage()
                .contains("chain"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Kind.parse("fp8")).getMessage()
                .contains("unknown kind 'fp8'"));
    }

    @Test
    void groupedKindsFitOnlyWidthsTheirGroupDivides() {
        assertEquals(Optional.empty(), Kind.parse("nm:2:4").unfit(704));
        assertEquals(Optional.of("704 input columns are not a multiple of 128"), Kind.parse("int4g:128").unfit(704));
        assertEquals(Optional.empty(), Kind.parse("int4g:128").unfit(256));
        assertEquals(Optional.empty(), Kind.parse("prune").unfit(3));
        assertEquals(Optional.empty(), Kind.parse("int8_rowwise").unfit(3));
    }

    @Test
    void steppedKindsStepUpToFullSparsity() {
        Kind wanda = Kind.parse("wanda");
        assertEquals(new CompressionSpec.Wanda(0.3), wanda.first(0.3));
        assertEquals(Optional.of(new CompressionSpec.Wanda(1.0)), wanda.after(new CompressionSpec.Wanda(0.7), 0.3));
        assertEquals(Optional.empty(), wanda.after(new CompressionSpec.Wanda(0.8), 0.3));
        assertTrue(wanda.owns(new CompressionSpec.Wanda(0.2)));
        assertFalse(wanda.owns(new CompressionSpec.Prune(0.2)));
        assertEquals(Optional.empty(), Kind.parse("nm:2:4").after(new CompressionSpec.NM(2, 4), 0.3));
    }

    @Test
    void withoutKindsASweepOffersPruneAndInt8AsItsOptionsSay() {
        assertEquals(List.of("prune"), texts(Kind.offered(sweep().build())));
        assertEquals(List.of("prune", "int8_rowwise"), texts(Kind.offered(sweep().setInt8(true).build())));
        assertEquals(List.of("int8_rowwise"), texts(Kind.offered(sweep().setPruneStep(0).setInt8(true).build())));
        assertEquals(List.of("nm:2:4", "wanda"),
                texts(Kind.offered(sweep().setKinds(new ArrayList<>(List.of("nm:2:4", "wanda"))).build())));
    }

    private static List<String> texts(List<Kind> kinds) {
        return kinds.stream().map(Kind::text).toList();
    }
}
