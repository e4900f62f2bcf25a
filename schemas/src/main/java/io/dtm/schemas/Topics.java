package io.dtm.schemas;

/**
 * Every topic of the pipeline, its key and what it holds. Shared by all modules so a name is never spelled twice.
 *
 * <p>Keys are UTF-8 strings; values are Avro records in the Confluent wire format (subject {@code <topic>-value}).
 */
public final class Topics {
    private Topics() {}

    /** Key {@code sweepId}; value {@code SweepRequest}. Compacted: the latest definition of each sweep. */
    public static final String SWEEPS = "dtm.sweeps";
    /** Key {@code trialId/shard}; value {@code ComponentTrial}. The work queue the worker group consumes. */
    public static final String TRIALS = "dtm.trials";
    /** Key {@code trialId/shard}; value {@code DivergenceResult}. Per-prompt FDT/SDT of one trial shard. */
    public static final String DIVERGENCES = "dtm.divergences";
    /** Key {@code promptSetId/shard}; value {@code BaseContinuation}. Compacted: base continuations shared by workers. */
    public static final String BASELINES = "dtm.baselines";
    /** Key {@code sweepId/round}; value {@code RankingUpdate}. Compacted: the live ranking dashboards consume. */
    public static final String RANKINGS = "dtm.rankings";
    /** Key {@code sweepId/round}; value {@code ScheduleStep}. Compacted: each decided round and the cumulative schedule. */
    public static final String SCHEDULE = "dtm.schedule";
    /** Key: the failed record's key; value {@code DeadLetter}. Records no stage could process, with the reason. */
    public static final String DEAD_LETTERS = "dtm.dead-letters";
    /** The single-machine schema registry's store (compacted), as Confluent's {@code _schemas}. */
    public static final String SCHEMAS = "_dtm_schemas";

    /** Topics the pipeline creates, in creation order. */
    public static final java.util.List<String> ALL =
            java.util.List.of(SWEEPS, TRIALS, DIVERGENCES, BASELINES, RANKINGS, SCHEDULE, DEAD_LETTERS);

    /** Topics whose latest value per key is the state (cleanup.policy=compact). */
    public static final java.util.Set<String> COMPACTED = java.util.Set.of(SWEEPS, BASELINES, RANKINGS, SCHEDULE, SCHEMAS);

    public static String shardKey(String id, int shard) {
        return id + "/" + shard;
    }

    public static String roundKey(String sweepId, int round) {
        return sweepId + "/" + round;
    }
}
