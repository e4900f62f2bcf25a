package io.dtm.schemas;

import java.util.Locale;

/**
 * A compression as it travels in events and reports: {@code prune:<s>} (unstructured magnitude pruning to sparsity
 * {@code s}) or {@code int8_rowwise} (symmetric absmax int8 per output row). The math lives in the engine; this is the
 * shared, validated name.
 */
public record CompressionSpec(Kind kind, double sparsity) {

    public enum Kind { PRUNE, INT8_ROWWISE }

    public CompressionSpec {
        if (kind == null) {
            throw new IllegalArgumentException("compression kind is required");
        }
        if (kind == Kind.PRUNE && !(sparsity >= 0.0 && sparsity <= 1.0)) {
            throw new IllegalArgumentException("invalid sparsity " + sparsity + ": must be within [0, 1]");
        }
        if (kind == Kind.INT8_ROWWISE && sparsity != 0.0) {
            throw new IllegalArgumentException("int8_rowwise takes no sparsity");
        }
    }

    public static CompressionSpec prune(double sparsity) {
        return new CompressionSpec(Kind.PRUNE, sparsity);
    }

    public static CompressionSpec int8() {
        return new CompressionSpec(Kind.INT8_ROWWISE, 0.0);
    }

    /** Parses {@code prune:0.5} or {@code int8_rowwise}; anything else is rejected with the offending text. */
    public static CompressionSpec parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException("compression is missing");
        }
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.equals("int8_rowwise") || t.equals("int8")) {
            return int8();
        }
        if (t.startsWith("prune:")) {
            String s = t.substring("prune:".length());
            try {
                return prune(Double.parseDouble(s));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("invalid sparsity '" + s + "' in compression '" + text + "'");
            }
        }
        throw new IllegalArgumentException("unknown compression '" + text + "' (expected prune:<s> or int8_rowwise)");
    }

    /** Canonical text: sparsity rounded to 4 decimals so that 0.1 + 0.2 and 0.3 name the same step. */
    @Override
    public String toString() {
        if (kind == Kind.INT8_ROWWISE) {
            return "int8_rowwise";
        }
        java.math.BigDecimal s = java.math.BigDecimal.valueOf(sparsity).setScale(4, java.math.RoundingMode.HALF_EVEN)
                .stripTrailingZeros();
        return "prune:" + (s.scale() < 1 ? s.setScale(1).toPlainString() : s.toPlainString());
    }
}
