package io.dtm.cli;

import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.GoldenCheck;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "golden", mixinStandardHelpOptions = true, description = "Recompute a golden file (prompts + cases), compare what it expects, write the result.")
final class GoldenCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Hugging Face model directory.")
    Path model;

    @Option(names = "--golden", required = true, description = "Golden JSON file (prompts, prompt_ids, cases, ...).")
    Path golden;

    @Option(names = "--out", description = "Write the recomputed file here, in the same format.")
    Path out;

    @Mixin
    EngineMixin engine;

    @Override
    public Integer call() throws Exception {
        try (DivergenceEngine e = DivergenceEngine.load(model, engine.options())) {
            GoldenCheck.Summary summary = new GoldenCheck(e, System.out).run(golden, out);
            System.out.println(summary);
            return summary.mismatches() > 0 ? 1 : 0;
        }
    }
}
