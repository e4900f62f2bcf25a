package io.dtm.cli;

import io.dtm.engine.Bench;
import io.dtm.engine.DivergenceEngine;
import io.dtm.schemas.CompressionSpec;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true, description = "Single-round sweep of every linear component, scored three ways: naive, full, fast.")
final class BenchCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Hugging Face model directory.")
    Path model;

    @Option(names = "--prompts", required = true, description = "Prompt file, one prompt per line.")
    Path prompts;

    @Option(names = "--tokens", defaultValue = "64", description = "Generated tokens N (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--prune", defaultValue = "0.5", description = "Sparsity of every trial (default: ${DEFAULT-VALUE}).")
    double prune;

    @Mixin
    EngineMixin engine;

    @Override
    public Integer call() throws Exception {
        try (DivergenceEngine e = DivergenceEngine.load(model, engine.options())) {
            var trials = Bench.singleRound(e, CompressionSpec.prune(prune));
            System.out.printf("bench: %s on %s, %d trials (prune:%s)%n", model.getFileName(), e.device(), trials.size(), prune);
            var promptList = Prompts.read(prompts);
            Bench.Result r = Bench.run(e, promptList, tokens, trials, System.out);
            System.out.printf("prompts disagreeing with fast: full %d, naive %d (of %d trial-prompts)%n",
                    r.fullDisagreements(), r.naiveDisagreements(), trials.size() * promptList.size());
            System.out.println(r.line());
            return r.fullDisagreements() == 0 ? 0 : 1;
        }
    }
}
