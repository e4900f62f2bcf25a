package io.dtm.local;

import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.EngineOptions;
import io.dtm.engine.PromptSet;
import io.dtm.engine.Trial;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.avro.SweepRequest;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Scores the trials a finished sweep ran — each round's candidates on top of that round's schedule, and each decided
 * schedule — with the engine alone in this process, to time the pipeline against the bare engine and to cross-check
 * every FDTM the aggregator ranked.
 */
public final class EngineComparison {

    private EngineComparison() {}

    public static void run(Path modelDir, SweepRequest request, Map<Integer, RankingView> rankings, ScheduleView schedule, EngineOptions options,
                    double pipelineSeconds) throws Exception {
        // the demo sized PyTorch's pool for its in-process workers; alone, the engine gets every core
        ai.djl.pytorch.jni.JniUtils.setNumThreads(Runtime.getRuntime().availableProcessors());
        long start = System.nanoTime();
        int trials = 0;
        int disagreements = 0;
        try (DivergenceEngine engine = DivergenceEngine.load(modelDir, options);
             PromptSet set = engine.prepare(request.getPrompts(), request.getTokens(), DivergenceEngine.Progress.NONE)) {
            for (RankingView round : rankings.values()) {
                Trial base = scheduleBefore(schedule, round.round());
                for (RankingView.Entry e : round.entries()) {
                    Trial t = base.plus(e.component(), CompressionSpec.parse(e.compression()));
                    disagreements += check(engine.score(set, t).summary(), e.fdtm(), e.sdtm(), t);
                    trials++;
                }
            }
            for (ScheduleView.Step step : schedule.steps()) {
                Trial t = trial(step.schedule());
                disagreements += check(engine.score(set, t).summary(), step.fdtm(), step.sdtm(), t);
                trials++;
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf(Locale.ROOT, "engine alone: %d trials (load + base continuations + scoring) in %.1f s; "
                + "pipeline wall time %.1f s (x%.2f); FDTM/SDTM disagreements: %d%n",
                trials, seconds, pipelineSeconds, pipelineSeconds / seconds, disagreements);
    }

    private static Trial scheduleBefore(ScheduleView schedule, int round) {
        return schedule.steps().stream().filter(s -> s.round() == round - 1).findFirst()
                .map(s -> trial(s.schedule())).orElse(Trial.none());
    }

    private static Trial trial(List<ScheduleView.Entry> entries) {
        Trial t = Trial.none();
        for (ScheduleView.Entry e : entries) {
            t = t.plus(e.component(), CompressionSpec.parse(e.compression()));
        }
        return t;
    }

    /** 1 if the direct score differs from the pipeline's (batches of another size may flip a near-tie), else 0. */
    private static int check(DivergenceSummary direct, double fdtm, double sdtm, Trial t) {
        if (Math.abs(direct.fdtm() - fdtm) < 1e-9 && Math.abs(direct.sdtm() - sdtm) < 1e-9) {
            return 0;
        }
        System.out.printf(Locale.ROOT, "  differs: %s pipeline FDTM %.4f SDTM %.5f, engine FDTM %.4f SDTM %.5f%n",
                t, fdtm, sdtm, direct.fdtm(), direct.sdtm());
        return 1;
    }
}
