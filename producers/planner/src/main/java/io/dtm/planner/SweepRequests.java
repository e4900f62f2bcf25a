package io.dtm.planner;

import io.dtm.schemas.avro.AllocationRequest;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.SweepRequest;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/** Checks a {@link SweepRequest} before it is published, and again where the aggregator consumes it. */
public final class SweepRequests {
    private SweepRequests() {}

    /**
     * Compression text keeps 4 decimals (see {@code CompressionSpec}), so a smaller prune step would round to no step
     * at all and the sweep would offer the same sparsity forever.
     */
    public static final double MIN_PRUNE_STEP = 1e-4;

    /** Sweep ids end up inside keys such as {@code sweepId/round}; a slash or whitespace would make those ambiguous. */
    private static final Pattern SWEEP_ID = Pattern.compile("[^/\\s]{1,200}");

    /** Every problem of the request, each naming its field; empty when the request is valid. */
    public static List<String> problems(SweepRequest sweep) {
        List<String> problems = new ArrayList<>();
        if (!isValidSweepId(sweep.getSweepId())) {
            problems.add("sweepId must be 1-200 characters without '/' or whitespace, got '" + sweep.getSweepId() + "'");
        }
        if (isBlank(sweep.getModel())) {
            problems.add("model is required");
        }
        if (isBlank(sweep.getPromptSetId())) {
            problems.add("promptSetId is required (TrialPlanner.promptSetId computes it)");
        }
        if (sweep.getPrompts() == null || sweep.getPrompts().isEmpty()) {
            problems.add("prompts must not be empty");
        } else {
            for (int i = 0; i < sweep.getPrompts().size(); i++) {
                if (isBlank(sweep.getPrompts().get(i))) {
                    problems.add("prompts[" + i + "] is blank");
                }
            }
        }
        if (sweep.getTokens() < 1) {
            problems.add("tokens must be >= 1, got " + sweep.getTokens());
        }
        try {
            Pattern.compile(sweep.getComponentRegex());
        } catch (PatternSyntaxException | NullPointerException e) {
            problems.add("componentRegex is not a regular expression: '" + sweep.getComponentRegex() + "'");
        }
        problems.addAll(componentProblems(sweep.getComponents()));
        double step = sweep.getPruneStep();
        if (!(step == 0 || (step >= MIN_PRUNE_STEP && step <= 1))) {
            problems.add("pruneStep must be 0 (no pruning) or within [" + MIN_PRUNE_STEP + ", 1], got " + step);
        }
        problems.addAll(kindProblems(sweep));
        if (sweep.getSourceBits() < 1 || sweep.getSourceBits() > 64) {
            problems.add("sourceBits must be within [1, 64], got " + sweep.getSourceBits());
        }
        if (sweep.getRounds() < 1) {
            problems.add("rounds must be >= 1, got " + sweep.getRounds());
        }
        try {
            CommitRule.parse(sweep.getCommitRule());
        } catch (IllegalArgumentException e) {
            problems.add("commitRule: " + e.getMessage());
        }
        if (!Double.isFinite(sweep.getFdtmFloor())) {
            problems.add("fdtmFloor must be a finite number, got " + sweep.getFdtmFloor());
        }
        if (sweep.getAllocation() == null && !(sweep.getTargetSparsity() >= 0 && sweep.getTargetSparsity() <= 1)) {
            problems.add("targetSparsity must be within [0, 1], got " + sweep.getTargetSparsity());
        }
        if (sweep.getShardSize() < 1) {
            problems.add("shardSize must be >= 1, got " + sweep.getShardSize());
        }
        if (sweep.getAllocation() != null) {
            problems.addAll(allocationProblems(sweep));
        } else if (problems.isEmpty() && TrialPlanner.actions(sweep, List.of()).isEmpty()) {
            problems.add(sweep.getKinds().isEmpty() ? "no action is possible: pruneStep is 0 and int8 is false"
                    : "no action is possible: no kind fits any component (" + String.join("; ",
                    TrialPlanner.notPlanned(sweep)) + ")");
        }
        return problems;
    }

    /** A target allocation's own fields; T is the sweep's {@code targetSparsity}. */
    private static List<String> allocationProblems(SweepRequest sweep) {
        List<String> problems = new ArrayList<>();
        AllocationRequest allocation = sweep.getAllocation();
        if (!(sweep.getTargetSparsity() > 0 && sweep.getTargetSparsity() < 1)) {
            problems.add("targetSparsity must be within (0, 1) for a target allocation, got " + sweep.getTargetSparsity());
        }
        if (allocation.getIterations() < 1) {
            problems.add("allocation.iterations must be >= 1, got " + allocation.getIterations());
        }
        try {
            AllocationMetric.parse(allocation.getMetric());
        } catch (IllegalArgumentException e) {
            problems.add("allocation.metric: " + e.getMessage());
        }
        if (!allocation.getText().isEmpty() && allocation.getText().stream().allMatch(SweepRequests::isBlank)) {
            problems.add("allocation.text has no line to score: every one of its " + allocation.getText().size()
                    + " lines is blank");
        }
        if (sweep.getChain()) {
            problems.add("chain (--chain) does not apply to a target allocation: a component takes one kind that"
                    + " zeroes entries");
        }
        List<String> quantizers = new ArrayList<>();
        boolean parsed = true;
        for (String text : sweep.getKinds()) {
            try {
                if (Kind.parse(text).quantizes()) {
                    quantizers.add(text);
                }
            } catch (IllegalArgumentException e) {
                parsed = false; // kindProblems names it
            }
        }
        if (!quantizers.isEmpty()) {
            problems.add("kinds " + quantizers + " quantize and zero nothing, and a target allocation allocates"
                    + " sparsity (int8 and int4 count 0): list prune, wanda or nm:N:M");
        } else if (parsed && !sweep.getKinds().isEmpty() && sweep.getComponents() != null) {
            for (ComponentInfo c : sweep.getComponents()) {
                if (Allocations.kinds(sweep, c).isEmpty()) {
                    problems.add("component " + c.getName() + " fits none of the kinds " + sweep.getKinds() + " ("
                            + c.getColumns() + " input columns)");
                }
            }
        }
        if (allocation.getTextWindow() < 2) {
            problems.add("allocation.textWindow must be >= 2 (a window predicts its tokens after the first), got "
                    + allocation.getTextWindow());
        }
        return problems;
    }

    /** Whether {@code sweepId} can name a sweep: 1-200 characters, no '/' and no whitespace. */
    public static boolean isValidSweepId(String sweepId) {
        return sweepId != null && SWEEP_ID.matcher(sweepId).matches();
    }

    /** @throws IllegalArgumentException listing every problem, when there is one */
    public static void validate(SweepRequest sweep) {
        List<String> problems = problems(sweep);
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException("invalid sweep '" + sweep.getSweepId() + "': " + String.join("; ", problems));
        }
    }

    /**
     * {@code kinds} must parse, each once, and not conflict with the options they generalise: {@code int8} (list
     * int8_rowwise instead) and a prune step of 0 (prune and wanda step by it). Kinds that group input columns need
     * every component's width.
     */
    private static List<String> kindProblems(SweepRequest sweep) {
        List<String> problems = new ArrayList<>();
        if (sweep.getKinds().isEmpty()) {
            return problems;
        }
        Set<String> seen = new HashSet<>();
        boolean stepped = false;
        boolean grouped = false;
        for (String text : sweep.getKinds()) {
            try {
                Kind kind = Kind.parse(text);
                if (!seen.add(kind.text())) {
                    problems.add("kinds lists " + kind.text() + " twice");
                }
                stepped |= kind instanceof Kind.Stepped;
                grouped |= kind.group() > 1;
            } catch (IllegalArgumentException e) {
                problems.add("kinds: " + e.getMessage());
            }
        }
        if (sweep.getInt8()) {
            problems.add("int8 and kinds conflict (--int8, --kinds): int8 is the form without kinds; list int8_rowwise"
                    + " in kinds instead");
        }
        if (stepped && sweep.getPruneStep() == 0) {
            problems.add("kinds prune and wanda step by pruneStep (--prune-step), which is 0");
        }
        List<ComponentInfo> components = sweep.getComponents() == null ? List.of() : sweep.getComponents();
        for (int i = 0; grouped && i < components.size(); i++) {
            if (components.get(i).getColumns() < 1) {
                problems.add("components[" + i + "].columns must be >= 1: nm and int4g kinds need the input width");
            }
        }
        return problems;
    }

    private static List<String> componentProblems(List<ComponentInfo> components) {
        List<String> problems = new ArrayList<>();
        if (components == null || components.isEmpty()) {
            problems.add("components must not be empty (the caller resolves componentRegex against the model)");
            return problems;
        }
        Set<String> names = new HashSet<>();
        for (int i = 0; i < components.size(); i++) {
            ComponentInfo c = components.get(i);
            if (isBlank(c.getName())) {
                problems.add("components[" + i + "].name is blank");
            } else if (!names.add(c.getName())) {
                problems.add("components[" + i + "].name '" + c.getName() + "' is listed twice");
            }
            if (c.getParams() < 1) {
                problems.add("components[" + i + "].params must be >= 1 (sparsity is weighted by it), got " + c.getParams());
            }
            if (c.getColumns() < 0 || (c.getColumns() > 0 && c.getParams() % c.getColumns() != 0)) {
                problems.add("components[" + i + "].columns " + c.getColumns() + " does not divide its "
                        + c.getParams() + " params");
            }
        }
        return problems;
    }

    private static boolean isBlank(String s) {
        return s == null || s.isBlank();
    }
}
