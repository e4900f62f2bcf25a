package io.dtm.planner;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * One component's curve of a target-allocation iteration (dtm-spec, "Target allocation", step 2): the metric of the
 * schedule as a function of the extra sparsity {@code a} given to this component, piecewise linear between measured
 * points, from {@code (0, m(S))} to the last measured amount, and non-increasing.
 *
 * <p>A curve belongs to one kind of compression the component may take ({@code prune} unless the sweep offers others).
 * A stepped kind (prune, wanda) takes any sparsity, so its curve is read between its points; an N:M kind takes only
 * its own sparsity (or the whole matrix zero), so its curve is read at its points only.
 *
 * @param points ascending, strictly increasing amounts starting at {@code a = 0}; non-increasing finite metrics
 */
public record AllocationCurve(String component, Kind kind, List<Point> points) {

    /** A measured point: the schedule with this component {@code amount} sparser scored {@code metric}. */
    public record Point(double amount, double metric) {
        public Point {
            if (!(amount >= 0 && amount <= 1)) {
                throw new IllegalArgumentException("amount must be within [0, 1], got " + amount);
            }
            if (!Double.isFinite(metric)) {
                throw new IllegalArgumentException("metric must be finite, got " + metric);
            }
        }
    }

    public AllocationCurve {
        if (component == null || component.isBlank()) {
            throw new IllegalArgumentException("curve component is required");
        }
        if (kind == null || kind.quantizes()) {
            throw new IllegalArgumentException("curve of " + component + " needs a kind that zeroes entries, got "
                    + (kind == null ? null : kind.text()));
        }
        if (points == null || points.isEmpty() || points.get(0).amount() != 0) {
            throw new IllegalArgumentException("curve of " + component + " must start at a = 0");
        }
        points = List.copyOf(points);
        for (int k = 1; k < points.size(); k++) {
            if (!(points.get(k).amount() > points.get(k - 1).amount())) {
                throw new IllegalArgumentException("curve of " + component + ": amounts must strictly increase, got "
                        + points.get(k - 1).amount() + " then " + points.get(k).amount());
            }
            if (points.get(k).metric() > points.get(k - 1).metric()) {
                throw new IllegalArgumentException("curve of " + component + ": metrics must not increase, got "
                        + points.get(k - 1).metric() + " then " + points.get(k).metric());
            }
        }
    }

    /**
     * Step 2 of the spec: the measured points and {@code (0, m(S))}, sorted by amount, made non-increasing by a running
     * minimum (a sparser matrix is never credited with a better metric than a less sparse one of the same component).
     *
     * @param measured one point per planned amount, each {@code > 0}, in any order
     */
    public AllocationCurve(String component, List<Point> points) {
        this(component, TargetAllocation.PRUNE, points);
    }

    /** {@link #of(String, Kind, double, List)} of a {@code prune} curve. */
    public static AllocationCurve of(String component, double scheduleMetric, List<Point> measured) {
        return of(component, TargetAllocation.PRUNE, scheduleMetric, measured);
    }

    public static AllocationCurve of(String component, Kind kind, double scheduleMetric, List<Point> measured) {
        List<Point> sorted = new ArrayList<>(measured);
        sorted.sort(Comparator.comparingDouble(Point::amount));
        List<Point> points = new ArrayList<>(sorted.size() + 1);
        Point origin = new Point(0, scheduleMetric);
        points.add(origin);
        double running = origin.metric();
        for (Point p : sorted) {
            if (!(p.amount() > points.get(points.size() - 1).amount())) {
                throw new IllegalArgumentException("curve of " + component + ": measured amount " + p.amount()
                        + " is not > 0 or appears twice");
            }
            running = Math.min(running, p.metric());
            points.add(new Point(p.amount(), running));
        }
        return new AllocationCurve(component, kind, points);
    }

    /** The largest amount on the curve (the whole matrix zero, unless the component was already fully pruned). */
    public double maxAmount() {
        return points.get(points.size() - 1).amount();
    }

    /** The curve's lowest metric, reached at {@link #maxAmount()}. */
    public double minimum() {
        return points.get(points.size() - 1).metric();
    }

    /** The curve's value at {@code a}, interpolating linearly between neighbouring points. */
    public double value(double a) {
        if (!(a >= 0 && a <= maxAmount())) {
            throw new IllegalArgumentException("amount " + a + " is outside the curve of " + component + ": [0, "
                    + maxAmount() + "]");
        }
        int k = 0;
        while (k + 1 < points.size() && points.get(k + 1).amount() <= a) {
            k++;
        }
        if (k + 1 == points.size()) {
            return points.get(k).metric();
        }
        Point p = points.get(k);
        Point q = points.get(k + 1);
        return p.metric() + (a - p.amount()) / (q.amount() - p.amount()) * (q.metric() - p.metric());
    }

    /**
     * {@code a_c(f)}, the largest amount whose curve value is {@code ≥ f}: {@code 0} when {@code f} is above
     * {@code m(S)} (nothing qualifies, and a component is never un-pruned), {@link #maxAmount()} when {@code f} is at or
     * below {@link #minimum()}, and otherwise the point on the segment where the curve falls through {@code f}: with
     * {@code k} the last point whose metric is {@code ≥ f}, {@code a_k + (m_k − f)/(m_k − m_{k+1})·(a_{k+1} − a_k)}.
     * Taking the last such point means a flat stretch at level {@code f} counts up to its right end. A fixed kind
     * (N:M) cannot stop between its points, so its {@code a_c(f)} is {@code a_k} itself.
     */
    public double amountAt(double f) {
        if (Double.isNaN(f)) {
            throw new IllegalArgumentException("threshold f must be a number");
        }
        if (f > points.get(0).metric()) {
            return 0;
        }
        int k = points.size() - 1;
        while (points.get(k).metric() < f) {
            k--;
        }
        if (k == points.size() - 1 || !(kind instanceof Kind.Stepped)) {
            return points.get(k).amount();
        }
        Point p = points.get(k);
        Point q = points.get(k + 1);
        return p.amount() + (p.metric() - f) / (p.metric() - q.metric()) * (q.amount() - p.amount());
    }
}
