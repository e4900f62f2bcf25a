package io.dtm.schemas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class CompressionSpecTest {

    @Test
    void everyKindParsesToItsCanonicalTextAndBack() {
        for (String text : List.of("prune:0.0", "prune:1.0", "prune:0.1", "prune:0.25", "prune:0.3333", "int8_rowwise",
                "nm:2:4", "nm:4:8", "nm:1:4", "int4g:64", "int4g:128", "wanda:0.5", "wanda:0.8",
                "prune:0.5+int8_rowwise", "nm:2:4+int4g:64", "wanda:0.5+int8_rowwise")) {
            CompressionSpec spec = CompressionSpec.parse(text);
            assertEquals(text, spec.toString(), text);
            assertEquals(spec, CompressionSpec.parse(spec.toString()));
        }
        assertEquals(CompressionSpec.int8(), CompressionSpec.parse("int8"));
        assertEquals(CompressionSpec.prune(0.5).then(CompressionSpec.int8()), CompressionSpec.parse("prune:0.5+int8_rowwise"));
        assertEquals(List.of(new CompressionSpec.NM(2, 4), new CompressionSpec.Int4Group(64)),
                CompressionSpec.parse("NM:2:4 + int4g:64").steps());
    }

    @Test
    void sparsityTextIsCanonical() {
        // 0.1 + 0.2 and 0.3 name the same step
        assertEquals("prune:0.3", CompressionSpec.prune(0.1 + 0.2).toString());
        assertEquals("prune:0.0", CompressionSpec.prune(0).toString());
        assertEquals("prune:1.0", CompressionSpec.prune(1).toString());
        // eight decimals: a count k of n zeros survives the text as k/n for any n below 10^8
        long n = 45_088_768L;
        long k = 22_544_385L;
        double s = CompressionSpec.parse(CompressionSpec.prune((double) k / n).toString()).sparsity();
        assertEquals(k, (long) Math.rint(s * n));
    }

    @Test
    void badTextIsRejectedNamingTheProblem() {
        for (String bad : List.of("prune:1.5", "prune:-0.1", "prune:abc", "prune:NaN", "foo", "nm:3:2", "nm:2:0",
                "nm:2", "int4g:0", "int4g:x", "wanda:2", "prune:0.5+", "+int8_rowwise", "int8_rowwise:1")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CompressionSpec.parse(bad), bad);
            assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), bad);
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> CompressionSpec.parse("prune:1.5")).getMessage()
                .contains("1.5"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> CompressionSpec.parse("foo")).getMessage()
                .contains("foo"));
        assertThrows(IllegalArgumentException.class, () -> CompressionSpec.parse(null));
        assertThrows(IllegalArgumentException.class, () -> new CompressionSpec(List.of()));
    }

    @Test
    void zerosAndBitsPerWeight() {
        assertEquals(0.5, CompressionSpec.prune(0.5).zeroShare());
        assertEquals(0.5, CompressionSpec.nm(2, 4).zeroShare());
        assertEquals(0.0, CompressionSpec.int8().zeroShare());
        assertEquals(0.0, CompressionSpec.int4g(128).zeroShare());
        assertEquals(0.5, CompressionSpec.parse("nm:2:4+int4g:64").zeroShare(), "int4 keeps N:M's zeros");
        assertEquals(16.0, CompressionSpec.prune(0.0).bitsPerWeight(16));
        assertEquals(8.0, CompressionSpec.int8().bitsPerWeight(16));
        assertEquals(4.125, CompressionSpec.int4g(128).bitsPerWeight(16));
        assertEquals(8.0, CompressionSpec.prune(0.5).bitsPerWeight(16), "zeros are free");
        assertEquals(0.5 * 4.25, CompressionSpec.parse("nm:2:4+int4g:64").bitsPerWeight(16));
        assertTrue(CompressionSpec.wanda(0.5).needsActivations());
        assertFalse(CompressionSpec.prune(0.5).needsActivations());
        assertTrue(CompressionSpec.prune(0.5).isPrune());
        assertFalse(CompressionSpec.parse("prune:0.5+int8_rowwise").isPrune());
        assertTrue(CompressionSpec.parse("prune:0.5+int8_rowwise").isInt8());
        assertThrows(IllegalStateException.class, () -> CompressionSpec.int8().sparsity());
    }
}
