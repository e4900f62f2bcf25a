package io.dtm.planner;

import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.ContentDigest;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.avro.TrialKind;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Plans the trials of a sweep round. Pure and deterministic: the publisher (round 0) and the aggregator (every later
 * round, and replays of any round) compute the same trials with the same ids, which is how a re-published trial or a
 * redelivered result is recognised as the same one.
 */
public final class TrialPlanner {
    private TrialPlanner() {}

    /**
     * Floating-point noise in sparsities, which are sums: a prune step may land a hair above 1.0 after repeated additions
     * (0.7 + 0.3) and still means "fully pruned"; a parameter-weighted sum over many components may land a hair below a
     * target of 0.5 and must still count as reaching it ({@link Rounds}).
     */
    static final double SPARSITY_SLACK = 1e-9;

    /**
     * Each component's next actions on top of {@code schedule}, in the sweep's component order, then its kinds' order
     * ({@link Kind#offered}): a kind that zeroes continues the component's zeroing of that kind (the next prune or
     * wanda step, while the sparsity stays within 1.0) or starts one if it has none; a kind that quantizes is offered
     * once. A component zeroes and quantizes both only if the sweep chains; a kind that does not fit the component's
     * width ({@link #notPlanned}) is never offered to it. Without {@code kinds} this is what it has always been: the
     * next prune step unless the component is already int8, and int8 if offered and the component is not scheduled.
     */
    public static List<ScheduleEntry> actions(SweepRequest sweep, List<ScheduleEntry> schedule) {
        Map<String, CompressionSpec> applied = index(schedule);
        List<Kind> kinds = Kind.offered(sweep);
        List<ScheduleEntry> actions = new ArrayList<>();
        for (ComponentInfo component : sweep.getComponents()) {
            Held held = Held.of(applied.get(component.getName()));
            if (held == null) {
                continue;
            }
            for (Kind kind : kinds) {
                if (kind.unfit(component.getColumns()).isEmpty()) {
                    next(kind, held, sweep).ifPresent(spec -> actions.add(entry(component.getName(), spec)));
                }
            }
        }
        return actions;
    }

    /** Each component and kind the sweep never plans together, with the reason; the sweep's summary lists them. */
    public static List<String> notPlanned(SweepRequest sweep) {
        List<String> skipped = new ArrayList<>();
        for (ComponentInfo component : sweep.getComponents()) {
            for (Kind kind : Kind.offered(sweep)) {
                kind.unfit(component.getColumns())
                        .ifPresent(why -> skipped.add(component.getName() + " " + kind.text() + ": " + why));
            }
        }
        return skipped;
    }

    /**
     * What a component holds: at most a zeroing step, then a quantizing step (the only chains the planner makes).
     * {@link #of} is null for any other chain, which is offered nothing.
     */
    private record Held(CompressionSpec.Step zeroing, CompressionSpec.Step quantizing) {
        static Held of(CompressionSpec spec) {
            if (spec == null) {
                return new Held(null, null);
            }
            List<CompressionSpec.Step> steps = spec.steps();
            CompressionSpec.Step first = steps.get(0);
            boolean quantizes = first.valueBits() > 0;
            if (steps.size() == 1) {
                return quantizes ? new Held(null, first) : new Held(first, null);
            }
            return steps.size() == 2 && !quantizes && steps.get(1).valueBits() > 0 ? new Held(first, steps.get(1)) : null;
        }
    }

    /** A component's next compression by {@code kind}, or empty when the kind has nothing more for it. */
    private static Optional<CompressionSpec> next(Kind kind, Held held, SweepRequest sweep) {
        double step = sweep.getPruneStep();
        if (kind.quantizes()) {
            // quantizing a matrix that is all zeros changes nothing
            boolean open = held.quantizing() == null && (held.zeroing() == null
                    || (sweep.getChain() && held.zeroing().zeroShare() < 1.0));
            return open ? Optional.of(chain(held.zeroing(), kind.first(step))) : Optional.empty();
        }
        if (held.zeroing() == null) {
            return held.quantizing() == null || sweep.getChain()
                    ? Optional.of(chain(kind.first(step), held.quantizing())) : Optional.empty();
        }
        return kind.owns(held.zeroing())
                ? kind.after(held.zeroing(), step).map(z -> chain(z, held.quantizing())) : Optional.empty();
    }

    /** Zeroing (if any), then quantizing (if any). */
    private static CompressionSpec chain(CompressionSpec.Step zeroing, CompressionSpec.Step quantizing) {
        List<CompressionSpec.Step> steps = new ArrayList<>(2);
        if (zeroing != null) {
            steps.add(zeroing);
        }
        if (quantizing != null) {
            steps.add(quantizing);
        }
        return new CompressionSpec(steps);
    }

    /** Every shard of every candidate trial of {@code round}: one trial per {@link #actions action}. */
    public static List<ComponentTrial> candidates(SweepRequest sweep, int round, List<ScheduleEntry> schedule) {
        List<ScheduleEntry> base = sorted(schedule);
        List<ScheduleEntry> actions = actions(sweep, base);
        List<ComponentTrial> trials = new ArrayList<>();
        for (ScheduleEntry action : actions) {
            trials.addAll(shards(sweep, round, TrialKind.CANDIDATE, action.getComponent(), action.getCompression(), base,
                    actions.size()));
        }
        return trials;
    }

    /** Every shard of the trial that measures {@code schedule} alone after {@code round} was decided. */
    public static List<ComponentTrial> scheduleMeasure(SweepRequest sweep, int round, List<ScheduleEntry> schedule) {
        return shards(sweep, round, TrialKind.SCHEDULE, null, null, sorted(schedule), 1);
    }

    /** How many shards each trial of the sweep has. */
    public static int shardCount(SweepRequest sweep) {
        // in long: prompts + shardSize - 1 overflows an int for a shard size near Integer.MAX_VALUE
        return (int) ((sweep.getPrompts().size() + (long) sweep.getShardSize() - 1) / sweep.getShardSize());
    }

    /** The schedule after a round: each committed entry replaces its component's old entry (or adds one). */
    public static List<ScheduleEntry> apply(List<ScheduleEntry> schedule, List<ScheduleEntry> committed) {
        Map<String, ScheduleEntry> byComponent = new TreeMap<>();
        sorted(schedule).forEach(e -> byComponent.put(e.getComponent(), e));
        committed.forEach(e -> byComponent.put(e.getComponent(), entry(e.getComponent(), CompressionSpec.parse(e.getCompression()))));
        return List.copyOf(byComponent.values());
    }

    /** The schedule ordered by component name, its canonical order; a component listed twice is rejected. */
    public static List<ScheduleEntry> sorted(Collection<ScheduleEntry> schedule) {
        Map<String, ScheduleEntry> byComponent = new TreeMap<>();
        for (ScheduleEntry e : schedule) {
            if (byComponent.put(e.getComponent(), e) != null) {
                throw new IllegalArgumentException("component " + e.getComponent() + " appears twice in the schedule");
            }
        }
        return List.copyOf(byComponent.values());
    }

    /**
     * The trial id: 16 hex digits of SHA-256 over every input that changes what a trial measures. The schedule is
     * hashed in canonical order, so the same schedule always yields the same id.
     */
    public static String trialId(String sweepId, int round, TrialKind kind, String component, String compression,
                                 List<ScheduleEntry> schedule) {
        ContentDigest digest = new ContentDigest().add("trial").add(sweepId).add(round).add(kind.name()).add(component)
                .add(compression);
        List<ScheduleEntry> canonical = sorted(schedule);
        digest.add(canonical.size());
        canonical.forEach(e -> digest.add(e.getComponent()).add(e.getCompression()));
        return digest.shortHex();
    }

    /** The id of a prompt set (keys the base continuations every worker shares): model, tokens and prompts, in order. */
    public static String promptSetId(String model, int tokens, List<String> prompts) {
        ContentDigest digest = new ContentDigest().add("prompts").add(model).add(tokens).add(prompts.size());
        prompts.forEach(digest::add);
        return digest.shortHex();
    }

    static List<ComponentTrial> shards(SweepRequest sweep, int round, TrialKind kind, String component,
                                       String compression, List<ScheduleEntry> schedule, int trialsInRound) {
        String trialId = trialId(sweep.getSweepId(), round, kind, component, compression, schedule);
        List<String> prompts = sweep.getPrompts();
        int shardSize = sweep.getShardSize();
        int shardCount = shardCount(sweep);
        List<ComponentTrial> shards = new ArrayList<>(shardCount);
        for (int shard = 0; shard < shardCount; shard++) {
            int offset = shard * shardSize;
            shards.add(ComponentTrial.newBuilder()
                    .setTrialId(trialId)
                    .setShard(shard)
                    .setShardCount(shardCount)
                    .setSweepId(sweep.getSweepId())
                    .setRound(round)
                    .setKind(kind)
                    .setModel(sweep.getModel())
                    .setPromptSetId(sweep.getPromptSetId())
                    .setTokens(sweep.getTokens())
                    .setComponent(component)
                    .setCompression(compression)
                    .setSchedule(new ArrayList<>(schedule))
                    .setPromptOffset(offset)
                    .setPrompts(new ArrayList<>(prompts.subList(offset,
                            (int) Math.min((long) offset + shardSize, prompts.size()))))
                    .setTrialsInRound(trialsInRound)
                    .build());
        }
        return shards;
    }

    private static Map<String, CompressionSpec> index(List<ScheduleEntry> schedule) {
        Map<String, CompressionSpec> applied = new TreeMap<>();
        for (ScheduleEntry e : sorted(schedule)) {
            applied.put(e.getComponent(), CompressionSpec.parse(e.getCompression()));
        }
        return applied;
    }

    private static ScheduleEntry entry(String component, CompressionSpec compression) {
        return new ScheduleEntry(component, compression.toString());
    }
}
