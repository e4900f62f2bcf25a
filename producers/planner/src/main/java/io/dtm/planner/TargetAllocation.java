package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The target allocation (dtm-spec, "Target allocation"): reach an overall sparsity {@code T} over all linear components,
 * weighted by their parameter counts, in {@code K} iterations guided by a metric of the schedule. Pure, so the
 * aggregator can {@link #plan plan} an iteration's trials and {@link Plan#commit commit} once they are all in, and
 * a replay computes the same.
 *
 * <p>Every sparsity this class hands out (a trial's, a committed component's) is a multiple of {@code 1e-4}, the
 * precision of {@link CompressionSpec}'s canonical text, so {@code prune:<s>} names exactly the matrix that was
 * measured or committed: the exact value is rounded <em>up</em> to that grid (ignoring {@code 1e-9} of floating-point
 * noise), which never lowers the overall sparsity below an iteration's target (beyond that noise). A value on the grid
 * is the double nearest to its 4-decimal text, so {@code CompressionSpec.parse(prune(s).toString()).sparsity() == s}.
 */
public record TargetAllocation(double target, int iterations) {

    /** The kind of every component when a sweep offers no others, and of the whole matrix zero. */
    public static final Kind PRUNE = new Kind.Stepped("prune");

    /** The spec's default K. */
    public static final int DEFAULT_ITERATIONS = 4;

    /** The bisection on the threshold f stops once its bracket is this narrow, in tokens (spec: "to 1e-3 tokens"). */
    public static final double THRESHOLD_TOLERANCE = 1e-3;

    /** Steps per unit of sparsity: {@link CompressionSpec} names sparsities to 4 decimals. */
    private static final double GRID = 10_000;

    /** Sums like 0.1 + 0.2 land a hair above the grid point they mean; rounding up must not move them a whole step. */
    private static final double GRID_SLACK = 1e-9;

    public TargetAllocation {
        if (!(target > 0 && target < 1)) {
            throw new IllegalArgumentException("target sparsity must be within (0, 1), got " + target);
        }
        if (iterations < 1) {
            throw new IllegalArgumentException("iterations must be >= 1, got " + iterations);
        }
    }

    /** {@code t_i = T·i/K}; written as {@code T·(i/K)} so that the last iteration's target is exactly {@code T}. */
    public double iterationTarget(int iteration) {
        checkIteration(iteration);
        return target * ((double) iteration / iterations);
    }

    /** The trials of {@code iteration} from the schedule so far, one {@link Component} per linear component. */
    public Plan plan(int iteration, List<Component> components) {
        return new Plan(this, iteration, components);
    }

    /** {@code Σ n_c s_c / Σ n_c}: the share of zeros over all the components' parameters. */
    public static double overallSparsity(List<Component> components) {
        if (components.isEmpty()) {
            throw new IllegalArgumentException("no components to take the overall sparsity of");
        }
        double zeros = 0;
        double params = 0;
        for (Component c : components) {
            zeros += c.params() * c.sparsity();
            params += c.params();
        }
        return zeros / params;
    }

    /** The smallest multiple of {@code 1e-4} at or above {@code sparsity} (less {@link #GRID_SLACK}). */
    static double onGrid(double sparsity) {
        // max(…, 0): the slack would turn 0 into -0.0, which records and map keys tell apart from 0.0
        return Math.max(Math.ceil((sparsity - GRID_SLACK) * GRID), 0) / GRID;
    }

    private void checkIteration(int iteration) {
        if (iteration < 1 || iteration > iterations) {
            throw new IllegalArgumentException("iteration " + iteration + " is outside 1.." + iterations);
        }
    }

    /**
     * A linear component: its name, parameter count {@code n_c}, current sparsity {@code s_c} and the kind that
     * reached it, and the kinds it may take (those the sweep offers that fit its width; dtm-spec "Target allocation"
     * reads as {@code prune} only, which is the default). A kind that quantizes zeroes nothing, so it has no place
     * here; an N:M kind sits at exactly its own sparsity; the whole matrix zero is {@code prune:1}.
     */
    public record Component(String name, long params, double sparsity, Kind kind, List<Kind> kinds) {

        /** A component that is pruned, or may only be. */
        public Component(String name, long params, double sparsity) {
            this(name, params, sparsity, PRUNE, List.of(PRUNE));
        }

        public Component {
            if (name == null || name.isBlank()) {
                throw new IllegalArgumentException("component name is required");
            }
            if (params <= 0) {
                throw new IllegalArgumentException("component " + name + " has n_c = " + params
                        + " parameters: must be > 0");
            }
            if (!(sparsity >= 0 && sparsity <= 1)) {
                throw new IllegalArgumentException("component " + name + " has sparsity " + sparsity
                        + ": must be within [0, 1]");
            }
            if (kinds == null || kinds.isEmpty()) {
                throw new IllegalArgumentException("component " + name + " may take no kind");
            }
            kinds = List.copyOf(kinds);
            for (Kind k : kinds) {
                checkZeroes(name, k);
            }
            checkZeroes(name, kind);
            if (kind instanceof Kind.Fixed fixed && sparsity != 0 && sparsity != fixed.step().zeroShare()) {
                throw new IllegalArgumentException("component " + name + " is " + fixed.text() + ", whose sparsity is "
                        + fixed.step().zeroShare() + ", not " + sparsity);
            }
        }

        /** Its kind at {@code s_c}, applied to the base weight. */
        public CompressionSpec compression() {
            return TargetAllocation.compression(kind, sparsity);
        }
    }

    /**
     * One planned trial: the schedule so far with {@code component} replaced by {@code kind} at {@code sparsity} of its
     * base weight, {@code sparsity = s_c + amount}.
     */
    public record Trial(String component, double amount, double sparsity, Kind kind) {

        /** A {@code prune} trial. */
        public Trial(String component, double amount, double sparsity) {
            this(component, amount, sparsity, PRUNE);
        }

        public Trial {
            if (component == null || component.isBlank()) {
                throw new IllegalArgumentException("trial component is required");
            }
            if (!(amount > 0 && sparsity <= 1)) {
                throw new IllegalArgumentException("trial of " + component + " must add a sparsity > 0 and end at"
                        + " most at 1, got +" + amount + " to " + sparsity);
            }
            checkZeroes(component, kind);
        }

        public CompressionSpec compression() {
            return TargetAllocation.compression(kind, sparsity);
        }
    }

    /** {@code kind} at {@code sparsity}: a stepped kind's own step, an N:M kind's one step. */
    static CompressionSpec compression(Kind kind, double sparsity) {
        return new CompressionSpec(List.of(kind instanceof Kind.Stepped stepped ? stepped.at(sparsity)
                : ((Kind.Fixed) kind).step()));
    }

    private static void checkZeroes(String component, Kind kind) {
        if (kind == null || kind.quantizes()) {
            throw new IllegalArgumentException("component " + component + ": a target allocation allocates sparsity,"
                    + " and " + (kind == null ? "no kind" : kind.text()) + " zeroes nothing");
        }
    }

    /**
     * One iteration, from the schedule {@code S} so far: its components, their sparsities {@code s_c} and sizes.
     *
     * @param components every linear component the target counts, each named once
     */
    public record Plan(TargetAllocation allocation, int iteration, List<Component> components) {
        public Plan {
            if (allocation == null) {
                throw new IllegalArgumentException("plan needs its target allocation");
            }
            allocation.checkIteration(iteration);
            if (components == null || components.isEmpty()) {
                throw new IllegalArgumentException("plan needs at least one component");
            }
            components = List.copyOf(components);
            Set<String> names = new HashSet<>();
            for (Component c : components) {
                if (!names.add(c.name())) {
                    throw new IllegalArgumentException("component " + c.name() + " appears twice");
                }
            }
        }

        /** {@code t_i}. */
        public double iterationTarget() {
            return allocation.iterationTarget(iteration);
        }

        /** {@code o}, the overall sparsity of {@code S}. */
        public double overallSparsity() {
            return TargetAllocation.overallSparsity(components);
        }

        /** {@code Δ = t_i − o}; {@code ≤ 0} when {@code S} already reaches {@code t_i}. */
        public double delta() {
            return iterationTarget() - overallSparsity();
        }

        /**
         * The component trials, in component order and ascending sparsity within a component (ties in the order of
         * its kinds): for each stepped kind the amounts {@code Δ/2} and {@code 3Δ/2} capped at {@code 1 − s_c}, each
         * sparsity {@code s_c + a} rounded up to the {@code 1e-4} grid; for each N:M kind its own sparsity; and
         * {@code 1 − s_c}, the whole matrix zero ({@code prune:1}, the last point of every kind's curve). Amounts that
         * coincide within a kind (capped, or equal on the grid) are planned once, and amounts that are not
         * {@code > 0} ({@code Δ ≤ 0}, a vanishing {@code Δ}, an N:M sparsity the component already has) are not
         * planned: they would measure {@code S} itself, which is the curve's point {@code (0, m(S))}. So a pruned-only
         * component has 1 to 3 trials, and none once fully pruned; {@code S} itself is measured besides these.
         */
        public List<Trial> trials() {
            double delta = delta();
            List<Trial> trials = new ArrayList<>();
            for (Component c : components) {
                List<Trial> own = new ArrayList<>();
                for (Kind kind : c.kinds()) {
                    TreeSet<Double> sparsities = new TreeSet<>();
                    if (kind instanceof Kind.Fixed fixed) {
                        sparsities.add(fixed.step().zeroShare());
                    } else {
                        for (double amount : new double[] {delta / 2, 3 * delta / 2}) {
                            if (amount > 0) {
                                sparsities.add(onGrid(Math.min(c.sparsity() + amount, 1)));
                            }
                        }
                    }
                    for (double s : sparsities) {
                        if (s > c.sparsity() && s < 1) {
                            own.add(new Trial(c.name(), s - c.sparsity(), s, kind));
                        }
                    }
                }
                own.sort(Comparator.comparingDouble(Trial::sparsity)
                        .thenComparingInt(t -> c.kinds().indexOf(t.kind())));
                trials.addAll(own);
                if (c.sparsity() < 1) {
                    trials.add(zero(c));
                }
            }
            return List.copyOf(trials);
        }

        /** Every trial of the iteration: {@link #trials()} and the one measuring {@code S}. */
        public int trialCount() {
            return trials().size() + 1;
        }

        /**
         * Step 2: a curve per component and kind it may take, from {@code m(S)}, the metric of that kind's trials and
         * of the whole matrix zero, in component order and the component's order of kinds.
         *
         * @param measured the metric of every one of {@link #trials()}, and of nothing else
         */
        public List<AllocationCurve> curves(double scheduleMetric, Map<Trial, Double> measured) {
            if (!Double.isFinite(scheduleMetric)) {
                throw new IllegalArgumentException("m(S) must be finite, got " + scheduleMetric);
            }
            List<Trial> trials = trials();
            Set<Trial> planned = new HashSet<>(trials);
            for (Trial t : measured.keySet()) {
                if (!planned.contains(t)) {
                    throw new IllegalArgumentException("measurement of " + t + " is not a trial of iteration " + iteration);
                }
            }
            Map<Trial, Double> metrics = new HashMap<>();
            for (Trial t : trials) {
                Double metric = measured.get(t);
                if (metric == null) {
                    throw new IllegalArgumentException("missing measurement of " + t.component() + " at "
                            + t.compression() + " (iteration " + iteration + ")");
                }
                if (!Double.isFinite(metric)) {
                    throw new IllegalArgumentException("measurement of " + t.component() + " at " + t.compression()
                            + " must be finite, got " + metric);
                }
                metrics.put(t, metric);
            }
            List<AllocationCurve> curves = new ArrayList<>();
            for (Component c : components) {
                for (Kind kind : c.kinds()) {
                    List<AllocationCurve.Point> points = new ArrayList<>();
                    for (Trial t : trials) {
                        boolean zero = t.sparsity() == 1;
                        if (t.component().equals(c.name()) && (zero || t.kind().equals(kind))) {
                            points.add(new AllocationCurve.Point(t.amount(), metrics.get(t)));
                        }
                    }
                    curves.add(AllocationCurve.of(c.name(), kind, scheduleMetric, points));
                }
            }
            return List.copyOf(curves);
        }

        /**
         * Step 3: {@code Σ n_c (s_c + a_c(f)) / Σ n_c}, exact (not on the grid), with {@code a_c(f)} the largest amount
         * any of the component's kinds reaches. Non-increasing in f.
         *
         * @param curves as {@link #curves} orders them
         */
        public double overallSparsityAt(List<AllocationCurve> curves, double f) {
            checkAligned(curves);
            double zeros = 0;
            double params = 0;
            int next = 0;
            for (Component component : components) {
                double amount = 0;
                for (int k = 0; k < component.kinds().size(); k++) {
                    amount = Math.max(amount, curves.get(next++).amountAt(f));
                }
                zeros += component.params() * (component.sparsity() + amount);
                params += component.params();
            }
            return zeros / params;
        }

        /**
         * Step 3: the largest f where {@link #overallSparsityAt} is {@code ≥ t_i}, by bisection. The bracket is
         * {@code [lo, hi]} with {@code lo} the lowest point of any curve (there every component takes its last amount,
         * the whole matrix zero, so the overall sparsity is 1) and {@code hi = m(S)}, every curve's start (above it no
         * component moves). If {@code hi} already reaches {@code t_i} it is the answer; otherwise the bracket is halved,
         * keeping {@code lo} reaching {@code t_i} and {@code hi} not, until {@code hi − lo ≤ 1e-3}, and {@code lo} is
         * returned: the true largest f lies in {@code [lo, lo + 1e-3)} and {@code lo} itself reaches {@code t_i}.
         */
        public double threshold(List<AllocationCurve> curves) {
            checkAligned(curves);
            double target = iterationTarget();
            double lo = curves.stream().mapToDouble(AllocationCurve::minimum).min().orElseThrow();
            double hi = curves.stream().mapToDouble(c -> c.points().get(0).metric()).max().orElseThrow();
            if (overallSparsityAt(curves, hi) >= target) {
                return hi;
            }
            while (hi - lo > THRESHOLD_TOLERANCE) {
                double mid = (lo + hi) / 2;
                if (overallSparsityAt(curves, mid) >= target) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return lo;
        }

        /**
         * Steps 2–4: the curves, the threshold f, and the commit {@code s_c ← s_c + a_c(f)} in the kind that reaches
         * furthest (ties: the kind the component has, then its first), a stepped kind's sparsity rounded up to the
         * {@code 1e-4} grid; the overall sparsity is that of the committed sparsities (so {@code ≥ t_i}).
         */
        public Commit commit(double scheduleMetric, Map<Trial, Double> measured) {
            List<AllocationCurve> curves = curves(scheduleMetric, measured);
            double f = threshold(curves);
            List<Component> committed = new ArrayList<>(components.size());
            int next = 0;
            for (Component component : components) {
                Kind best = component.kind();
                double amount = 0;
                for (Kind kind : component.kinds()) {
                    double a = curves.get(next++).amountAt(f);
                    if (a > amount || a == amount && a > 0 && kind.equals(component.kind())) {
                        best = kind;
                        amount = a;
                    }
                }
                committed.add(amount == 0 ? component : moved(component, best, amount));
            }
            return new Commit(iteration, iterationTarget(), f, TargetAllocation.overallSparsity(committed),
                    committed, curves);
        }

        private static Trial zero(Component c) {
            return new Trial(c.name(), 1 - c.sparsity(), 1, PRUNE);
        }

        private static Component moved(Component c, Kind kind, double amount) {
            double sparsity = kind instanceof Kind.Fixed fixed && amount < 1 - c.sparsity()
                    ? fixed.step().zeroShare() : onGrid(c.sparsity() + amount);
            return new Component(c.name(), c.params(), sparsity, sparsity >= 1 ? PRUNE : kind, c.kinds());
        }

        private void checkAligned(List<AllocationCurve> curves) {
            int expected = components.stream().mapToInt(c -> c.kinds().size()).sum();
            if (curves.size() != expected) {
                throw new IllegalArgumentException(curves.size() + " curves for " + components.size() + " components"
                        + (expected == components.size() ? "" : " offering " + expected + " kinds in all"));
            }
            int next = 0;
            for (Component c : components) {
                for (Kind kind : c.kinds()) {
                    AllocationCurve curve = curves.get(next);
                    if (!curve.component().equals(c.name()) || !curve.kind().equals(kind)) {
                        throw new IllegalArgumentException("curve " + next + " is of " + curve.component()
                                + (curve.kind().equals(kind) ? "" : " " + curve.kind().text()) + ", expected "
                                + c.name() + (curve.kind().equals(kind) ? "" : " " + kind.text()));
                    }
                    next++;
                }
            }
        }
    }

    /**
     * A decided iteration: the threshold {@code f}, the committed components (new {@code s_c}, on the {@code 1e-4}
     * grid, in plan order) and their overall sparsity; the curves it was decided on, for reports.
     */
    public record Commit(int iteration, double iterationTarget, double threshold, double overallSparsity,
                             List<Component> components, List<AllocationCurve> curves) {
        public Commit {
            components = List.copyOf(components);
            curves = List.copyOf(curves);
        }
    }
}
