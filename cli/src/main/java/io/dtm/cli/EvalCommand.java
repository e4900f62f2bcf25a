package io.dtm.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.PromptSet;
import io.dtm.engine.TextSet;
import io.dtm.engine.Trial;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.TextScore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "FDTM and SDTM of one compressed component, or of a whole schedule, over a prompt set; with"
                + " --text also perplexity, KL to the base model and top-1 agreement on a text.")
final class EvalCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Hugging Face model directory.")
    Path model;

    @Option(names = "--prompts", required = true, description = "Prompt file, one prompt per line.")
    Path prompts;

    @Option(names = "--component", description = "One component, e.g. model.layers.3.mlp.up_proj (with --prune or --int8).")
    String component;

    @Option(names = "--prune", description = "Magnitude-prune the component to this sparsity (0..1).")
    Double prune;

    @Option(names = "--int8", description = "Naive int8 row-wise quantization of the component.")
    boolean int8;

    @Option(names = "--schedule",
            description = "A whole schedule instead: JSON with {\"components\": {component: compression}}, or a demo/sweep output.")
    Path schedule;

    @Option(names = "--tokens", defaultValue = "64", description = "Generated tokens N (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--text", description = "Also score this text file (one document per line).")
    Path text;

    @Option(names = "--window", defaultValue = "128", description = "Tokens per text window (default: ${DEFAULT-VALUE}).")
    int window;

    @Option(names = "--continuations",
            description = "Write the compressed model's own greedy continuations here (JSON: prompt_ids, continuations).")
    Path continuations;

    @Mixin
    EngineMixin engine;

    /** The trial the options name, or an error naming what is missing or conflicting. */
    private Trial trial() throws java.io.IOException {
        boolean single = component != null || prune != null || int8;
        if (single == (schedule != null)) {
            throw new IllegalArgumentException("give either --component with --prune or --int8, or --schedule");
        }
        if (schedule != null) {
            return ScheduleFile.read(schedule);
        }
        if (component == null || (prune == null) == !int8) {
            throw new IllegalArgumentException("--component needs exactly one of --prune S or --int8");
        }
        return Trial.of(component, int8 ? CompressionSpec.int8() : CompressionSpec.prune(prune));
    }

    @Override
    public Integer call() throws Exception {
        Trial trial = trial();
        List<String> promptList = Prompts.read(prompts);
        List<String> lines = text == null ? null : Prompts.read(text);
        try (DivergenceEngine e = DivergenceEngine.load(model, engine.options())) {
            trial.changes().keySet().forEach(e::parameters); // an unknown component fails before the base model is run
            ProgressBar bar = new ProgressBar(System.err);
            try (PromptSet set = e.prepare(promptList, tokens, bar)) {
                score(e, set, trial, bar, lines);
            }
        }
        return 0;
    }

    /** Scores the trial over the prompt set, then over the text if there is one, then writes its continuations. */
    private void score(DivergenceEngine e, PromptSet set, Trial trial, ProgressBar bar, List<String> lines)
            throws java.io.IOException {
        bar.update("scoring", 0, 1);
        DivergenceSummary s = e.score(set, trial).summary();
        bar.update("scoring", 1, 1);
        String what = trial.changes().size() == 1 ? trial.changes().keySet().iterator().next() + " "
                + trial.changes().values().iterator().next() : "schedule of " + trial.changes().size() + " components";
        System.out.printf(Locale.ROOT, "%s over %d prompts x %d tokens%n", what, s.prompts(), tokens);
        System.out.printf(Locale.ROOT, "FDTM %.2f (median %.1f, p10 %.1f, %.1f%% of prompts at N=%d)%n",
                s.fdtm(), s.fdtMedian(), s.fdtP10(), 100 * s.shareAtN(), tokens);
        System.out.printf(Locale.ROOT, "SDTM %.4f%n", s.sdtm());
        if (lines != null) {
            try (TextSet texts = e.prepareText(lines, window)) {
                TextScore t = e.scoreText(texts, trial, set);
                System.out.printf(Locale.ROOT, "text %s: %d windows, %d tokens: perplexity %.4f, KL %.5f,"
                                + " top-1 agreement %.4f%n", text.getFileName(), texts.windows(), texts.predicted(),
                        t.perplexity(), t.klMean(), t.top1Agreement());
            }
        }
        if (continuations != null) {
            writeContinuations(e, trial, set);
        }
    }

    private void writeContinuations(DivergenceEngine e, Trial trial, PromptSet set) throws java.io.IOException {
        int[][] generated = e.generate(set.promptIds(), tokens, trial, set, DivergenceEngine.Progress.NONE);
        ObjectMapper json = new ObjectMapper();
        ObjectNode out = json.createObjectNode();
        out.set("prompt_ids", json.valueToTree(set.promptIds()));
        out.set("continuations", json.valueToTree(generated));
        Files.createDirectories(continuations.toAbsolutePath().getParent());
        json.writeValue(continuations.toFile(), out);
    }
}
