package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.avro.SweepRequest;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * A kind of compression a sweep offers each component ({@code --kinds}, dtm-spec "Compressions"): what a component's
 * next action may be. Prune and Wanda are stepped by the sweep's prune step; N:M, int4g and int8 are one fixed step.
 * A kind either zeroes entries (prune, wanda, nm) or quantizes them (int8_rowwise, int4g), and a component holds at
 * most one of each, zeroing first: {@code wanda:0.5+int4g:128}.
 */
public sealed interface Kind permits Kind.Stepped, Kind.Fixed {

    /** The canonical text, as {@code --kinds} and {@code SweepRequest.kinds} spell it. */
    String text();

    /** Whether this kind quantizes (int8_rowwise, int4g:G) rather than zeroes (prune, wanda, nm:N:M). */
    boolean quantizes();

    /** How many consecutive input columns this kind works on together: N:M's M, int4g's G; 1 for the others. */
    int group();

    /** Why a matrix with {@code columns} input features cannot take this kind (its group must divide a row). */
    default Optional<String> unfit(int columns) {
        return columns % group() == 0 ? Optional.empty()
                : Optional.of(columns + " input columns are not a multiple of " + group());
    }

    /** Whether a component's {@code step} is of this kind, so that this kind's next action continues it. */
    boolean owns(CompressionSpec.Step step);

    /** This kind's first step on a component that has none of it. */
    CompressionSpec.Step first(double pruneStep);

    /** The step after {@code step} (of this kind), or empty when there is none. */
    Optional<CompressionSpec.Step> after(CompressionSpec.Step step, double pruneStep);

    /** {@code prune} and {@code wanda}: sparsity raised by the prune step, up to 1.0. */
    record Stepped(String text) implements Kind {
        public Stepped {
            if (!text.equals("prune") && !text.equals("wanda")) {
                throw new IllegalArgumentException("a stepped kind is prune or wanda, not '" + text + "'");
            }
        }

        @Override
        public boolean quantizes() {
            return false;
        }

        @Override
        public int group() {
            return 1;
        }

        @Override
        public boolean owns(CompressionSpec.Step step) {
            return text.equals("prune") ? step instanceof CompressionSpec.Prune : step instanceof CompressionSpec.Wanda;
        }

        @Override
        public CompressionSpec.Step first(double pruneStep) {
            return at(pruneStep);
        }

        @Override
        public Optional<CompressionSpec.Step> after(CompressionSpec.Step step, double pruneStep) {
            double next = step.zeroShare() + pruneStep;
            return next <= 1.0 + TrialPlanner.SPARSITY_SLACK ? Optional.of(at(Math.min(next, 1.0))) : Optional.empty();
        }

        /** This kind's step at {@code sparsity}. */
        CompressionSpec.Step at(double sparsity) {
            return text.equals("prune") ? new CompressionSpec.Prune(sparsity) : new CompressionSpec.Wanda(sparsity);
        }
    }

    /** {@code nm:N:M}, {@code int4g:G} or {@code int8_rowwise}: one step, taken once. */
    record Fixed(CompressionSpec.Step step) implements Kind {
        public Fixed {
            if (!(step instanceof CompressionSpec.NM || step instanceof CompressionSpec.Int4Group
                    || step instanceof CompressionSpec.Int8Rowwise)) {
                throw new IllegalArgumentException("a fixed kind is nm:N:M, int4g:G or int8_rowwise, not " + step);
            }
        }

        @Override
        public String text() {
            return step.text();
        }

        @Override
        public boolean quantizes() {
            return step.valueBits() > 0;
        }

        @Override
        public int group() {
            return step instanceof CompressionSpec.NM nm ? nm.m()
                    : step instanceof CompressionSpec.Int4Group g ? g.group() : 1;
        }

        @Override
        public boolean owns(CompressionSpec.Step other) {
            return step.equals(other);
        }

        @Override
        public CompressionSpec.Step first(double pruneStep) {
            return step;
        }

        @Override
        public Optional<CompressionSpec.Step> after(CompressionSpec.Step current, double pruneStep) {
            return Optional.empty();
        }
    }

    /**
     * Parses one kind: {@code prune}, {@code wanda}, {@code nm:N:M}, {@code int4g:G} or {@code int8_rowwise} (or
     * {@code int8}). A sparsity is refused: prune and wanda take theirs from the prune step.
     */
    static Kind parse(String text) {
        String t = text == null ? "" : text.trim().toLowerCase(Locale.ROOT);
        if (t.equals("prune") || t.equals("wanda")) {
            return new Stepped(t);
        }
        if (t.startsWith("prune:") || t.startsWith("wanda:")) {
            throw new IllegalArgumentException("kind '" + text + "': " + t.substring(0, t.indexOf(':'))
                    + " takes its sparsity from the prune step; write '" + t.substring(0, t.indexOf(':')) + "'");
        }
        CompressionSpec spec;
        try {
            spec = CompressionSpec.parse(t);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown kind '" + text + "' (expected prune, wanda, nm:<N>:<M>,"
                    + " int4g:<G> or int8_rowwise)");
        }
        if (spec.steps().size() != 1) {
            throw new IllegalArgumentException("kind '" + text + "' is a chain; list its kinds and set chain instead");
        }
        return new Fixed(spec.steps().get(0));
    }

    /**
     * The kinds {@code sweep} offers, in its order: its {@code kinds}, or without them what {@code pruneStep} and
     * {@code int8} have always meant (prune if the step is positive, then int8_rowwise if set).
     */
    static List<Kind> offered(SweepRequest sweep) {
        List<Kind> kinds = new ArrayList<>();
        if (!sweep.getKinds().isEmpty()) {
            sweep.getKinds().forEach(k -> kinds.add(parse(k)));
            return kinds;
        }
        if (sweep.getPruneStep() > 0) {
            kinds.add(new Stepped("prune"));
        }
        if (sweep.getInt8()) {
            kinds.add(new Fixed(new CompressionSpec.Int8Rowwise()));
        }
        return kinds;
    }
}
