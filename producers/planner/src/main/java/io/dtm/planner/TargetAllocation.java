package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;

import java.util.ArrayList;
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

    /** A linear component: its name, parameter count {@code n_c} and current sparsity {@code s_c}. */
    public record Component(String name, long params, double sparsity) {
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
        }

        /** {@code prune(s_c)} of the base weight. */
        public CompressionSpec compression() {
            return CompressionSpec.prune(sparsity);
        }
    }

    /**
     * One planned trial: the schedule so far with {@code component} replaced by {@code prune(sparsity)} of its base
     * weight, {@code sparsity = s_c + amount}.
     */
    public record Trial(String component, double amount, double sparsity) {
        public Trial {
            if (component == null || component.isBlank()) {
                throw new IllegalArgumentException("trial component is required");
            }
            if (!(amount > 0 && sparsity <= 1)) {
                throw new IllegalArgumentException("trial of " + component + " must add a sparsity > 0 and end at"
                        + " most at 1, got +" + amount + " to " + sparsity);
            }
        }

        public CompressionSpec compression() {
            return CompressionSpec.prune(sparsity);
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
         * The component trials, in component order and ascending sparsity within a component: for each component the
         * amounts {@code Δ/2} and {@code 3Δ/2} capped at {@code 1 − s_c}, and {@code 1 − s_c} (the whole matrix zero),
         * each sparsity {@code s_c + a} rounded up to the {@code 1e-4} grid. Amounts that coincide (capped, or equal on
         * the grid) are planned once, and amounts that are not {@code > 0} ({@code Δ ≤ 0}, or a vanishing {@code Δ})
         * are not planned: they would measure {@code S} itself, which is the curve's point {@code (0, m(S))}. So a
         * component has 1 to 3 trials, and none once fully pruned; {@code S} itself is measured besides these.
         */
        public List<Trial> trials() {
            double delta = delta();
            List<Trial> trials = new ArrayList<>();
            for (Component c : components) {
                TreeSet<Double> sparsities = new TreeSet<>();
                for (double amount : new double[] {delta / 2, 3 * delta / 2}) {
                    if (amount > 0) {
                        sparsities.add(onGrid(Math.min(c.sparsity() + amount, 1)));
                    }
                }
                sparsities.add(1.0);
                for (double s : sparsities) {
                    if (s > c.sparsity()) {
                        trials.add(new Trial(c.name(), s - c.sparsity(), s));
                    }
                }
            }
            return List.copyOf(trials);
        }

        /** Every trial of the iteration: {@link #trials()} and the one measuring {@code S}. */
        public int trialCount() {
            return trials().size() + 1;
        }

        /**
         * Step 2: each component's curve from {@code m(S)} and the metric of each of its trials.
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
            Map<String, List<AllocationCurve.Point>> points = new LinkedHashMap<>();
            components.forEach(c -> points.put(c.name(), new ArrayList<>()));
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
                points.get(t.component()).add(new AllocationCurve.Point(t.amount(), metric));
            }
            List<AllocationCurve> curves = new ArrayList<>(components.size());
            points.forEach((component, p) -> curves.add(AllocationCurve.of(component, scheduleMetric, p)));
            return List.copyOf(curves);
        }

        /**
         * Step 3: {@code Σ n_c (s_c + a_c(f)) / Σ n_c}, exact (not on the grid). Non-increasing in f.
         *
         * @param curves one per component, in component order
         */
        public double overallSparsityAt(List<AllocationCurve> curves, double f) {
            checkAligned(curves);
            double zeros = 0;
            double params = 0;
            for (int c = 0; c < curves.size(); c++) {
                Component component = components.get(c);
                zeros += component.params() * (component.sparsity() + curves.get(c).amountAt(f));
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
         * Steps 2–4: the curves, the threshold f, and the commit {@code s_c ← s_c + a_c(f)}, rounded up to the
         * {@code 1e-4} grid; the overall sparsity is that of the committed sparsities (so {@code ≥ t_i}).
         */
        public Commit commit(double scheduleMetric, Map<Trial, Double> measured) {
            List<AllocationCurve> curves = curves(scheduleMetric, measured);
            double f = threshold(curves);
            List<Component> committed = new ArrayList<>(components.size());
            for (int c = 0; c < components.size(); c++) {
                Component component = components.get(c);
                committed.add(new Component(component.name(), component.params(),
                        onGrid(component.sparsity() + curves.get(c).amountAt(f))));
            }
            return new Commit(iteration, iterationTarget(), f, TargetAllocation.overallSparsity(committed),
                    committed, curves);
        }

        private void checkAligned(List<AllocationCurve> curves) {
            if (curves.size() != components.size()) {
                throw new IllegalArgumentException(curves.size() + " curves for " + components.size() + " components");
            }
            for (int c = 0; c < curves.size(); c++) {
                if (!curves.get(c).component().equals(components.get(c).name())) {
                    throw new IllegalArgumentException("curve " + c + " is of " + curves.get(c).component()
                            + ", expected " + components.get(c).name());
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
