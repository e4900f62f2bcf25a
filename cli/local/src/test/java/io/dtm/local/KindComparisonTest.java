package io.dtm.local;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.dtm.aggregator.RankingView;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.SweepRequest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class KindComparisonTest {

    private static SweepRequest sweep(String... kinds) {
        return SweepRequest.newBuilder().setSweepId("s").setModel("m").setPromptSetId("p")
                .setPrompts(new ArrayList<>(List.of("x"))).setPruneStep(0.5)
                .setComponents(new ArrayList<>(List.of(new ComponentInfo("a", 16L, 4), new ComponentInfo("b", 16L, 4))))
                .setKinds(new ArrayList<>(List.of(kinds))).build();
    }

    private static RankingView.Entry entry(String component, String compression, double sparsity, double bits,
                                           double fdtm, double sdtm) {
        return new RankingView.Entry(component, compression, sparsity, bits, fdtm, sdtm, fdtm, fdtm, 0, 4, true);
    }

    /** Entries as a ranking has them: best first. */
    private static RankingView ranking(RankingView.Entry... best) {
        return new RankingView("s", 0, best.length, best.length, true, 0, List.of(best));
    }

    @Test
    void eachComponentsBestKindAtEachSparsityIsNamedAndCounted() {
        KindComparison c = KindComparison.of(sweep("prune", "nm:2:4", "wanda", "int8_rowwise", "int4g:4"), ranking(
                entry("b", "int8_rowwise", 0, 8, 16, 0), entry("a", "wanda:0.5", 0.5, 8, 12, 0.1),
                entry("a", "int4g:4", 0, 8, 11, 0.1), entry("b", "wanda:0.5", 0.5, 8, 9, 0.1),
                entry("b", "int4g:4", 0, 8, 9, 0.2), entry("b", "prune:0.5", 0.5, 8, 9, 0.3),
                entry("a", "prune:0.5", 0.5, 8, 7, 0.1), entry("a", "nm:2:4", 0.5, 8, 5, 0.1),
                entry("b", "nm:2:4", 0.5, 8, 3, 0.1), entry("a", "int8_rowwise", 0, 8, 2, 0.5)));

        assertEquals(2, c.levels().size());
        KindComparison.Level half = c.levels().get(0);
        assertEquals(0.5, half.sparsity());
        assertEquals(List.of("prune:0.5", "nm:2:4", "wanda:0.5"),
                half.columns().stream().map(KindComparison.Column::compression).toList(), "in --kinds order");
        assertEquals(List.of(new KindComparison.Row("a", ordered("prune:0.5", 7.0, "nm:2:4", 5.0, "wanda:0.5", 12.0),
                        "wanda:0.5"),
                new KindComparison.Row("b", ordered("prune:0.5", 9.0, "nm:2:4", 3.0, "wanda:0.5", 9.0), "wanda:0.5")),
                half.rows(), "b's tie at FDTM 9 goes to the lower SDTM");
        assertEquals(Map.of("wanda:0.5", 2), half.wins());
        KindComparison.Level none = c.levels().get(1);
        assertEquals(0.0, none.sparsity());
        assertEquals(List.of("int4g:4", "int8_rowwise"),
                none.rows().stream().map(KindComparison.Row::best).toList(), "a, then b");
        assertEquals(List.of(), c.unmatched());
    }

    @Test
    void candidatesAtASparsityNoOtherKindReachedAreNotCompared() {
        KindComparison c = KindComparison.of(sweep("prune", "nm:2:4"), ranking(
                entry("a", "prune:0.1", 0.1, 14.4, 15, 0), entry("a", "nm:2:4", 0.5, 8, 3, 0.1)));
        assertEquals(List.of(), c.levels());
        assertEquals(List.of("nm:2:4", "prune:0.1"), c.unmatched());
    }

    private static Map<String, Double> ordered(Object... pairs) {
        Map<String, Double> m = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            m.put((String) pairs[i], (Double) pairs[i + 1]);
        }
        return m;
    }
}
