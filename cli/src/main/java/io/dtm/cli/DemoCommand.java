package io.dtm.cli;

import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.local.AllocationReport;
import io.dtm.local.DemoReport;
import io.dtm.local.EngineComparison;
import io.dtm.local.LocalPipeline;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.avro.SweepRequest;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true, description = "Embedded broker + registry, one aggregator, two workers and a sweep, end to end.")
final class DemoCommand implements Callable<Integer>, JvmSetup {

    @Mixin
    SweepOptions sweep;

    @Mixin
    EngineMixin engine;

    @Option(names = "--workers", defaultValue = "2", description = "Workers in the group (default: ${DEFAULT-VALUE}).")
    int workers;

    @Option(names = "--out", description = "Write the rankings and schedule here as JSON.")
    Path out;

    @Option(names = "--compare-engine",
            description = "Afterwards, score the same trials with the engine alone (no Kafka) and compare time and FDTM.")
    boolean compareEngine;

    @Option(names = "--timeout-minutes", defaultValue = "30", description = "Give up after this long (default: ${DEFAULT-VALUE}).")
    long timeoutMinutes;

    @Override
    public void setUpJvm() {
        // the live progress lines are the demo's output; per-trial and broker logs would drown them
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
        System.setProperty("org.slf4j.simpleLogger.log.io.dtm", "warn");
        // in-process workers share one PyTorch pool: more threads than cores only makes them contend
        int pool = Math.max(1, Runtime.getRuntime().availableProcessors() / Math.max(1, workers));
        System.setProperty("ai.djl.pytorch.num_threads", System.getProperty("ai.djl.pytorch.num_threads", String.valueOf(pool)));
        System.setProperty("ai.djl.pytorch.num_interop_threads",
                System.getProperty("ai.djl.pytorch.num_interop_threads", "1"));
    }

    @Override
    public Integer call() throws Exception {
        long start = System.nanoTime();
        SweepRequest request = sweep.request(Prompts.demoText());
        boolean target = request.getAllocation() != null;
        if (target && compareEngine) {
            throw new IllegalArgumentException("--compare-engine compares a greedy sweep's rankings; a target"
                    + " allocation (--iterations) has its own baselines");
        }
        if (target) {
            System.out.printf(Locale.ROOT, "dtm demo: %s, %d components, %d prompts x %d tokens, target sparsity %s in"
                            + " %d iteration(s) by %s, %d text documents, %d workers%n", sweep.modelDir().getFileName(),
                    request.getComponents().size(), request.getPrompts().size(), request.getTokens(),
                    request.getTargetSparsity(), request.getAllocation().getIterations(),
                    request.getAllocation().getMetric(), request.getAllocation().getText().size(), workers);
        } else {
            System.out.printf("dtm demo: %s, %d components, %d prompts x %d tokens, %d round(s), commit %s, %d workers%n",
                    sweep.modelDir().getFileName(), request.getComponents().size(), request.getPrompts().size(),
                    request.getTokens(), request.getRounds(), request.getCommitRule(), workers);
        }
        try (LocalPipeline pipeline = LocalPipeline.start(workers, sweep.modelDir().toAbsolutePath().getParent(),
                engine.options())) {
            System.out.println("broker " + pipeline.bootstrapServers() + ", registry " + pipeline.registryUrl());
            System.out.println("aggregator queries at " + pipeline.rankingUrl(request.getSweepId()));
            SweepPublisher.Summary published = pipeline.publish(request);
            System.out.printf("sweep %s: %d trials in %d shards for %s%n", published.sweepId(),
                    published.trials(), published.shards(), target ? "iteration 1 and the 2 baselines" : "round 0");
            published.notPlanned().forEach(n -> System.out.println("  never planned: " + n));
            ScheduleView schedule = pipeline.follow(request.getSweepId(), Duration.ofMinutes(timeoutMinutes),
                    target ? DemoReport.progress(System.out, round -> "iteration " + (round + 1))
                            : DemoReport.progress(System.out));
            pipeline.stopWorkers();
            Map<Integer, RankingView> rankings = pipeline.rankings(request.getSweepId(), schedule.currentRound());
            double wall = (System.nanoTime() - start) / 1e9;
            Duration scoring = pipeline.workerTime(request.getSweepId());
            if (target) {
                AllocationReport.print(System.out, request, schedule);
            } else {
                DemoReport.print(System.out, request, rankings, schedule);
            }
            System.out.printf(Locale.ROOT, "demo wall time %.1f s; workers' own scoring time %.1f s (sum over trial shards)%n",
                    wall, scoring.toMillis() / 1000.0);
            if (compareEngine) {
                EngineComparison.run(sweep.modelDir(), request, rankings, schedule, engine.options(), wall);
            }
            if (out != null) {
                if (target) {
                    AllocationReport.writeJson(out, request, schedule);
                } else {
                    DemoReport.writeJson(out, request, rankings, schedule);
                }
                System.out.println("wrote " + out);
            }
        }
        return 0;
    }
}
