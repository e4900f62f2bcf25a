package io.dtm.schemas;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * A compression as it travels in events and reports: one step, or a chain {@code A+B} (A, then B on A's result), of
 * the kinds dtm-spec defines ("Compressions"):
 * <ul>
 *   <li>{@code prune:s} — unstructured magnitude pruning to sparsity s;
 *   <li>{@code int8_rowwise} — symmetric absmax int8 per output row;
 *   <li>{@code nm:N:M} — N of every M consecutive input columns zeroed, by magnitude;
 *   <li>{@code int4g:G} — symmetric absmax int4 per group of G input columns;
 *   <li>{@code wanda:s} — activation-aware pruning: |W|·‖X‖ per row.
 * </ul>
 * The math lives in the engine; this is the shared, validated name. Its text is canonical: sparsities to 8 decimals
 * (so 0.1 + 0.2 and 0.3 name the same step, and a count k of n zeros survives as k/n for any matrix under 10⁸ entries).
 */
public record CompressionSpec(List<Step> steps) {

    /** One step of a chain. */
    public sealed interface Step permits Prune, Int8Rowwise, NM, Int4Group, Wanda {
        /** The canonical text of this step. */
        String text();

        /** The share of zeros this step leaves in a dense matrix (int8 and int4 add none by design). */
        double zeroShare();

        /** Bits per stored value after this step, or 0 if it does not quantize. */
        default double valueBits() {
            return 0;
        }
    }

    /** {@code prune:s}: the round(s·numel) entries of smallest |W| zeroed, ties by flat index. */
    public record Prune(double sparsity) implements Step {
        public Prune {
            checkSparsity(sparsity, "prune");
        }

        @Override
        public String text() {
            return "prune:" + decimals(sparsity);
        }

        @Override
        public double zeroShare() {
            return sparsity;
        }
    }

    /** {@code int8_rowwise}: symmetric absmax int8 per output row, dequantized. */
    public record Int8Rowwise() implements Step {
        @Override
        public String text() {
            return "int8_rowwise";
        }

        @Override
        public double zeroShare() {
            return 0;
        }

        @Override
        public double valueBits() {
            return 8;
        }
    }

    /** {@code nm:N:M}: in each row, N of every M consecutive input columns zeroed by magnitude (N:M sparsity). */
    public record NM(int n, int m) implements Step {
        public NM {
            if (m < 1 || n < 0 || n > m) {
                throw new IllegalArgumentException("nm:N:M needs 0 ≤ N ≤ M and M ≥ 1, got nm:" + n + ":" + m);
            }
        }

        @Override
        public String text() {
            return "nm:" + n + ":" + m;
        }

        @Override
        public double zeroShare() {
            return (double) n / m;
        }
    }

    /** {@code int4g:G}: symmetric absmax int4 per group of G input columns, dequantized. */
    public record Int4Group(int group) implements Step {
        public Int4Group {
            if (group < 1) {
                throw new IllegalArgumentException("int4g:G needs a group of at least 1 column, got int4g:" + group);
            }
        }

        @Override
        public String text() {
            return "int4g:" + group;
        }

        @Override
        public double zeroShare() {
            return 0;
        }

        /** 4 bits a value plus a 16-bit scale shared by G of them. */
        @Override
        public double valueBits() {
            return 4 + 16.0 / group;
        }
    }

    /** {@code wanda:s}: per row, the round(s·in) entries of smallest |W_rc|·‖X_c‖₂ zeroed, ties by column. */
    public record Wanda(double sparsity) implements Step {
        public Wanda {
            checkSparsity(sparsity, "wanda");
        }

        @Override
        public String text() {
            return "wanda:" + decimals(sparsity);
        }

        @Override
        public double zeroShare() {
            return sparsity;
        }
    }

    public CompressionSpec {
        if (steps == null || steps.isEmpty()) {
            throw new IllegalArgumentException("a compression needs at least one step");
        }
        steps = List.copyOf(steps);
    }

    public static CompressionSpec prune(double sparsity) {
        return new CompressionSpec(List.of(new Prune(sparsity)));
    }

    public static CompressionSpec int8() {
        return new CompressionSpec(List.of(new Int8Rowwise()));
    }

    public static CompressionSpec nm(int n, int m) {
        return new CompressionSpec(List.of(new NM(n, m)));
    }

    public static CompressionSpec int4g(int group) {
        return new CompressionSpec(List.of(new Int4Group(group)));
    }

    public static CompressionSpec wanda(double sparsity) {
        return new CompressionSpec(List.of(new Wanda(sparsity)));
    }

    /** This compression, then {@code next} on its result. */
    public CompressionSpec then(CompressionSpec next) {
        List<Step> all = new ArrayList<>(steps);
        all.addAll(next.steps);
        return new CompressionSpec(all);
    }

    /**
     * Parses a compression's text: steps joined by {@code +}, each {@code prune:s}, {@code int8_rowwise} (or
     * {@code int8}), {@code nm:N:M}, {@code int4g:G} or {@code wanda:s}. Anything else is rejected naming the text.
     */
    public static CompressionSpec parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException("compression is missing");
        }
        List<Step> steps = new ArrayList<>();
        for (String part : text.trim().toLowerCase(Locale.ROOT).split("\\+", -1)) {
            steps.add(step(part.trim(), text));
        }
        return new CompressionSpec(steps);
    }

    private static Step step(String t, String whole) {
        String[] f = t.split(":", -1);
        try {
            return switch (f[0]) {
                case "int8_rowwise", "int8" -> {
                    arity(f, 1, whole);
                    yield new Int8Rowwise();
                }
                case "prune" -> {
                    arity(f, 2, whole);
                    yield new Prune(number(f[1], whole));
                }
                case "wanda" -> {
                    arity(f, 2, whole);
                    yield new Wanda(number(f[1], whole));
                }
                case "nm" -> {
                    arity(f, 3, whole);
                    yield new NM(Integer.parseInt(f[1]), Integer.parseInt(f[2]));
                }
                case "int4g" -> {
                    arity(f, 2, whole);
                    yield new Int4Group(Integer.parseInt(f[1]));
                }
                default -> throw new IllegalArgumentException("unknown compression '" + whole + "' (expected prune:<s>,"
                        + " int8_rowwise, nm:<N>:<M>, int4g:<G>, wanda:<s>, or steps joined by +)");
            };
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("invalid number in compression '" + whole + "'");
        }
    }

    private static void arity(String[] fields, int expected, String whole) {
        if (fields.length != expected) {
            throw new IllegalArgumentException("malformed step '" + String.join(":", fields) + "' in compression '"
                    + whole + "'");
        }
    }

    private static double number(String s, String whole) {
        try {
            return Double.parseDouble(s);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("invalid sparsity '" + s + "' in compression '" + whole + "'");
        }
    }

    private static void checkSparsity(double s, String kind) {
        if (!(s >= 0.0 && s <= 1.0)) {
            throw new IllegalArgumentException("invalid sparsity " + s + " for " + kind + ": must be within [0, 1]");
        }
    }

    /** Sparsity to 8 decimals, trailing zeros dropped but one kept ({@code 0.5}, {@code 1.0}). */
    private static String decimals(double s) {
        BigDecimal d = BigDecimal.valueOf(s).setScale(8, RoundingMode.HALF_EVEN).stripTrailingZeros();
        return d.scale() < 1 ? d.setScale(1).toPlainString() : d.toPlainString();
    }

    /** Whether this is a single magnitude-pruning step (what a prune sweep steps further). */
    public boolean isPrune() {
        return steps.size() == 1 && steps.get(0) instanceof Prune;
    }

    /** The sparsity of a single prune or wanda step; fails for anything else. */
    public double sparsity() {
        if (steps.size() == 1 && steps.get(0) instanceof Prune p) {
            return p.sparsity();
        }
        if (steps.size() == 1 && steps.get(0) instanceof Wanda w) {
            return w.sparsity();
        }
        throw new IllegalStateException(this + " is not a single prune or wanda step");
    }

    /**
     * The share of zeros the chain is meant to leave (what sparsity accounting counts): the largest of its steps'.
     * Magnitude steps zero the smallest entries first, so a later one's zeros include an earlier one's; quantizing keeps
     * zeros at zero. The share a matrix really ends with can be larger (values that round to zero); the engine measures it.
     */
    public double zeroShare() {
        return steps.stream().mapToDouble(Step::zeroShare).max().orElse(0);
    }

    /** Bits per stored value: the coarsest quantization in the chain, or {@code sourceBits} if none (16 for bf16). */
    public double valueBits(double sourceBits) {
        return steps.stream().mapToDouble(Step::valueBits).filter(b -> b > 0).min().orElse(sourceBits);
    }

    /** Bits per weight, counting zeros as free: (1 − zero share) × bits per stored value. */
    public double bitsPerWeight(double sourceBits) {
        return (1 - zeroShare()) * valueBits(sourceBits);
    }

    /** Whether a step needs the input activations of the matrix (Wanda's input norms). */
    public boolean needsActivations() {
        return steps.stream().anyMatch(s -> s instanceof Wanda);
    }

    /** Whether the chain quantizes to int8 (for the share of parameters in int8). */
    public boolean isInt8() {
        return steps.stream().anyMatch(s -> s instanceof Int8Rowwise);
    }

    /** Canonical text: the steps' texts joined by {@code +}. */
    @Override
    public String toString() {
        return steps.stream().map(Step::text).collect(Collectors.joining("+"));
    }
}
