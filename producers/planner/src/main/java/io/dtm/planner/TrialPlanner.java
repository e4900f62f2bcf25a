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
     * Each component's next action on top of {@code schedule}, in the sweep's component order: the next prune step
     * (while the sparsity stays within 1.0) unless the component is already int8, and int8 if the sweep offers it and
     * the component is not scheduled yet.
     */
    public static List<ScheduleEntry> actions(SweepRequest sweep, List<ScheduleEntry> schedule) {
        Map<String, CompressionSpec> applied = index(schedule);
        List<ScheduleEntry> actions = new ArrayList<>();
        for (ComponentInfo component : sweep.getComponents()) {
            CompressionSpec current = applied.get(component.getName());
            if (sweep.getPruneStep() > 0 && (current == null || current.isPrune())) {
                double next = (current == null ? 0.0 : current.sparsity()) + sweep.getPruneStep();
                if (next <= 1.0 + SPARSITY_SLACK) {
                    actions.add(entry(component.getName(), CompressionSpec.prune(Math.min(next, 1.0))));
                }
            }
            if (sweep.getInt8() && current == null) {
                actions.add(entry(component.getName(), CompressionSpec.int8()));
            }
        }
        return actions;
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
