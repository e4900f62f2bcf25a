package io.dtm.cli;

import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.PromptSet;
import io.dtm.engine.Trial;
import io.dtm.engine.TrialScore;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.DivergenceSummary;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "eval", mixinStandardHelpOptions = true, description = "FDTM and SDTM of one compressed component over a prompt set.")
final class EvalCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Hugging Face model directory.")
    Path model;

    @Option(names = "--prompts", required = true, description = "Prompt file, one prompt per line.")
    Path prompts;

    @Option(names = "--component", required = true, description = "e.g. model.layers.3.mlp.up_proj")
    String component;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Compression compression;

    static final class Compression {
        @Option(names = "--prune", description = "Magnitude-prune to this sparsity (0..1).")
        Double prune;

        @Option(names = "--int8", description = "Naive int8 row-wise quantization.")
        boolean int8;

        CompressionSpec spec() {
            return int8 ? CompressionSpec.int8() : CompressionSpec.prune(prune);
        }
    }

    @Option(names = "--tokens", defaultValue = "64", description = "Generated tokens N (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Mixin
    EngineMixin engine;

    @Override
    public Integer call() throws Exception {
        CompressionSpec spec = compression.spec();
        try (DivergenceEngine e = DivergenceEngine.load(model, engine.options())) {
            Trial trial = Trial.of(component, spec);
            e.parameters(component); // an unknown component fails before the base model is run
            ProgressBar bar = new ProgressBar(System.err);
            try (PromptSet set = e.prepare(Prompts.read(prompts), tokens, bar)) {
                bar.update("scoring", 0, 1);
                TrialScore score = e.score(set, trial);
                bar.update("scoring", 1, 1);
                DivergenceSummary s = score.summary();
                System.out.printf(Locale.ROOT, "%s %s over %d prompts x %d tokens%n", component, spec, s.prompts(), tokens);
                System.out.printf(Locale.ROOT, "FDTM %.2f (median %.1f, p10 %.1f, %.1f%% of prompts at N=%d)%n",
                        s.fdtm(), s.fdtMedian(), s.fdtP10(), 100 * s.shareAtN(), tokens);
                System.out.printf(Locale.ROOT, "SDTM %.4f%n", s.sdtm());
            }
        }
        return 0;
    }
}
