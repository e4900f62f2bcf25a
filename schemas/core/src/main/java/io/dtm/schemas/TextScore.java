package io.dtm.schemas;

/**
 * A schedule's text metrics (dtm-spec "Text metrics"), from per-position float32 values summed in float64 over the
 * {@code predicted} positions: the negative log-likelihood of the next tokens, the KL divergence of the base model's
 * next-token distribution to the schedule's, and how many positions both models' argmax agree on.
 */
public record TextScore(long predicted, double nllSum, double klSum, long agreed) {

    public TextScore {
        if (predicted < 1) {
            throw new IllegalArgumentException("a text score needs at least one predicted token");
        }
    }

    /** exp(Σ NLL / n). */
    public double perplexity() {
        return Math.exp(nllSum / predicted);
    }

    /** Mean over positions of KL(p_base ‖ p_compressed). */
    public double klMean() {
        return klSum / predicted;
    }

    /** Share of positions where the base model's and the schedule's argmax agree. */
    public double top1Agreement() {
        return (double) agreed / predicted;
    }
}
