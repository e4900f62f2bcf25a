package io.dtm.planner;

/** Why a sweep stopped; {@link #code()} is what {@code ScheduleStep.stopReason} carries (empty while it runs). */
public enum StopReason {
    /** The sweep's last round ({@code rounds}) was decided and measured. */
    ROUNDS("rounds"),
    /** The schedule's overall sparsity reached {@code targetSparsity} (a target allocation: after its iterations). */
    TARGET_SPARSITY("target_sparsity"),
    /** Every component is fully pruned or in int8: no candidate is left to try. */
    NO_ACTIONS("no_actions"),
    /**
     * No candidate of the round scored above the FDTM floor, so nothing could be committed; under
     * {@code cumulative-floor:X}, not even the best candidate's schedule kept FDTM ≥ X.
     */
    FDTM_FLOOR("fdtm_floor"),
    /** A trial of the round could not be scored (a worker dead-lettered it): {@code ScheduleStep.failure} says why. */
    FAILED("failed");

    private final String code;

    StopReason(String code) {
        this.code = code;
    }

    public String code() {
        return code;
    }
}
