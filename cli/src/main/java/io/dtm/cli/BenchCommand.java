package io.dtm.cli;

import io.dtm.engine.Bench;
import io.dtm.engine.DivergenceEngine;
import io.dtm.schemas.CompressionSpec;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Single-round sweep of linear components at one sparsity, scored by each method: naive (KV-cache"
                + " decoding), full (one teacher-forced pass), fast (the engine's cached path).")
final class BenchCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Hugging Face model directory.")
    Path model;

    @Option(names = "--prompts", required = true, description = "Prompt file, one prompt per line.")
    Path prompts;

    @Option(names = "--tokens", defaultValue = "64", description = "Generated tokens N (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--prune", defaultValue = "0.5", description = "Sparsity of every trial (default: ${DEFAULT-VALUE}).")
    double prune;

    @Option(names = "--components", defaultValue = ".*",
            description = "Regex over component names: the trials (default: every linear component).")
    String components;

    @Option(names = "--methods", defaultValue = "fast,full,naive",
            description = "Methods to time, any of fast, full, naive (default: ${DEFAULT-VALUE}).")
    String methods;

    @Option(names = "--profile", defaultValue = "0",
            description = "Afterwards, time this many trials phase by phase (compress, layers, head, compare, read-back).")
    int profile;

    @Option(names = "--trace",
            description = "Afterwards, record PyTorch's profiler (device time per op on a GPU) over the profiled trials "
                    + "(--profile, else 8) and write its Chrome trace to this file.")
    Path trace;

    @Mixin
    EngineMixin engine;

    @Override
    public Integer call() throws Exception {
        Set<Bench.Method> chosen = Bench.Method.parse(methods);
        var promptList = Prompts.read(prompts);
        try (DivergenceEngine e = DivergenceEngine.load(model, engine.options())) {
            var trials = Bench.singleRound(e, CompressionSpec.prune(prune), Pattern.compile(components));
            System.out.printf("bench: %s on %s (%s), %d trials (prune:%s), methods %s%n", model.getFileName(),
                    e.device(), e.dtypeName(), trials.size(), prune, methods);
            Bench.Result r = Bench.run(e, promptList, tokens, trials, chosen, profile, trace, System.out);
            StringBuilder perTrial = new StringBuilder("ms per trial:");
            for (Bench.Method m : chosen) {
                perTrial.append(String.format(Locale.ROOT, " %s=%.1f", m.name().toLowerCase(Locale.ROOT),
                        r.msPerTrial(m)));
            }
            System.out.println(perTrial);
            if (chosen.contains(Bench.Method.FAST) && chosen.size() > 1) {
                StringBuilder d = new StringBuilder("prompts disagreeing with fast:");
                r.disagreements().forEach((m, n) -> d.append(' ').append(m.name().toLowerCase(Locale.ROOT))
                        .append(' ').append(n).append(','));
                d.setLength(d.length() - 1);
                System.out.println(d + " (of " + trials.size() * promptList.size() + " trial-prompts)");
            }
            System.out.println(r.line());
            return r.disagreements().getOrDefault(Bench.Method.FULL, 0) == 0 ? 0 : 1;
        }
    }
}
