package io.dtm.local;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.dtm.aggregator.RankingView;
import io.dtm.planner.Kind;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.SweepRequest;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Which kind keeps FDTM highest per component, from a round's ranking: the candidates are grouped by the sparsity they
 * leave, and within a group every component's candidates are compared side by side (the ranking's order decides, so
 * a tie in FDTM goes to the lower SDTM). A group needs two kinds to compare; candidates at a sparsity no other kind
 * reached are left out ({@link #unmatched}).
 *
 * @param levels    one per sparsity that two or more kinds reached, sparsest first
 * @param unmatched each compression measured at a sparsity no other kind reached
 */
public record KindComparison(List<Level> levels, List<String> unmatched) {

    public KindComparison {
        levels = List.copyOf(levels);
        unmatched = List.copyOf(unmatched);
    }

    /**
     * The candidates at one sparsity.
     *
     * @param columns the compressions compared, in the sweep's kind order, each with its bits per weight
     * @param rows    one per component, in the sweep's component order
     * @param wins    how many components each compression is best for, most first
     */
    public record Level(double sparsity, List<Column> columns, List<Row> rows, Map<String, Integer> wins) {
        public Level {
            columns = List.copyOf(columns);
            rows = List.copyOf(rows);
            wins = Collections.unmodifiableMap(new LinkedHashMap<>(wins));
        }
    }

    public record Column(String compression, @JsonProperty("bits_per_weight") double bitsPerWeight) {}

    /** A component's FDTM under each compression of its level that was measured for it, and the best of them. */
    public record Row(String component, Map<String, Double> fdtm, String best) {
        public Row {
            fdtm = Collections.unmodifiableMap(new LinkedHashMap<>(fdtm));
        }
    }

    /** The comparison of {@code ranking}'s complete candidates, which must all run on one schedule (one round). */
    public static KindComparison of(SweepRequest sweep, RankingView ranking) {
        List<Kind> kinds = Kind.offered(sweep);
        Map<BigDecimal, List<RankingView.Entry>> bySparsity = new TreeMap<>(Comparator.reverseOrder());
        for (RankingView.Entry e : ranking.entries()) {
            if (e.complete()) {
                bySparsity.computeIfAbsent(level(e.sparsity()), s -> new ArrayList<>()).add(e);
            }
        }
        List<Level> levels = new ArrayList<>();
        List<String> unmatched = new ArrayList<>();
        for (Map.Entry<BigDecimal, List<RankingView.Entry>> group : bySparsity.entrySet()) {
            List<Column> columns = group.getValue().stream()
                    .map(e -> new Column(e.compression(), e.bitsPerWeight())).distinct()
                    .sorted(Comparator.comparingInt((Column c) -> kindIndex(kinds, c.compression()))
                            .thenComparing(Column::compression))
                    .toList();
            if (columns.size() < 2) {
                columns.forEach(c -> unmatched.add(c.compression()));
                continue;
            }
            levels.add(level(sweep, group.getKey().doubleValue(), columns, group.getValue()));
        }
        return new KindComparison(levels, unmatched);
    }

    private static Level level(SweepRequest sweep, double sparsity, List<Column> columns,
                               List<RankingView.Entry> entries) {
        List<Row> rows = new ArrayList<>();
        Map<String, Integer> wins = new LinkedHashMap<>();
        for (ComponentInfo component : sweep.getComponents()) {
            // entries come best first, so a component's first entry is its best
            List<RankingView.Entry> mine = entries.stream().filter(e -> e.component().equals(component.getName()))
                    .toList();
            if (mine.isEmpty()) {
                continue;
            }
            Map<String, Double> fdtm = new LinkedHashMap<>();
            for (Column c : columns) {
                mine.stream().filter(e -> e.compression().equals(c.compression())).findFirst()
                        .ifPresent(e -> fdtm.put(c.compression(), e.fdtm()));
            }
            String best = mine.get(0).compression();
            rows.add(new Row(component.getName(), fdtm, best));
            wins.merge(best, 1, Integer::sum);
        }
        Map<String, Integer> ordered = new LinkedHashMap<>();
        wins.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed())
                .forEach(e -> ordered.put(e.getKey(), e.getValue()));
        return new Level(sparsity, columns, rows, ordered);
    }

    /** Sparsities that differ only by floating-point noise (0.1 + 0.2 against 0.3) are one level. */
    private static BigDecimal level(double sparsity) {
        return BigDecimal.valueOf(sparsity).setScale(6, RoundingMode.HALF_EVEN);
    }

    /** The position of the kind a compression's first step belongs to, so columns follow {@code --kinds}. */
    private static int kindIndex(List<Kind> kinds, String compression) {
        CompressionSpec.Step first = CompressionSpec.parse(compression).steps().get(0);
        for (int i = 0; i < kinds.size(); i++) {
            if (kinds.get(i).owns(first)) {
                return i;
            }
        }
        return kinds.size();
    }
}
