package io.dtm.cli;

import io.dtm.engine.CheckpointExport;
import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.EngineOptions;
import io.dtm.engine.PromptSet;
import io.dtm.engine.Trial;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "apply", mixinStandardHelpOptions = true,
        description = "Write a schedule's compressed model as a Hugging Face checkpoint: config, tokenizer and"
                + " safetensors sharded like the source, every scheduled matrix compressed as dtm-spec defines it.")
final class ApplyCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Source Hugging Face model directory.")
    Path model;

    @Option(names = "--schedule", required = true,
            description = "JSON with {\"components\": {component: compression}}, or a demo/sweep output.")
    Path schedule;

    @Option(names = "--out", required = true, description = "Output directory (must not exist, or be empty).")
    Path out;

    @Option(names = "--dtype",
            description = "float32, bfloat16 or float16 (default: the source's; int8 values are then rounded to it,"
                    + " float32 is exact).")
    String dtype;

    @Option(names = "--format", defaultValue = "dequantized",
            description = "dequantized (every matrix dense, any loader runs it) or compressed-tensors (int4g and int8"
                    + " packed, nm:2:4 as a bitmask, the format vLLM reads) (default: ${DEFAULT-VALUE}).")
    String format;

    @Option(names = "--prompts",
            description = "Prompt file whose teacher-forced positions give Wanda its input norms (a schedule with wanda:s needs it).")
    Path prompts;

    @Option(names = "--tokens", defaultValue = "64", description = "Generated tokens N per prompt, with --prompts (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--device", defaultValue = "cpu",
            description = "Where compressions run, in float32: cpu, gpu, gpu:I (default: ${DEFAULT-VALUE}).")
    String device;

    @Override
    public Integer call() throws Exception {
        CheckpointExport.Format stored = switch (format) {
            case "dequantized" -> CheckpointExport.Format.DEQUANTIZED;
            case "compressed-tensors" -> CheckpointExport.Format.COMPRESSED_TENSORS;
            default -> throw new IllegalArgumentException("--format must be dequantized or compressed-tensors, got '"
                    + format + "'");
        };
        Trial trial = ScheduleFile.read(schedule);
        boolean weighted = trial.changes().values().stream().anyMatch(c -> c.needsActivations());
        if (weighted && prompts == null) {
            throw new IllegalArgumentException("the schedule has activation-weighted compressions (wanda): give --prompts"
                    + " (and --tokens) for their input norms");
        }
        try (DivergenceEngine e = DivergenceEngine.load(model,
                new EngineOptions(device, "float32", 64, EngineOptions.DEFAULT_CACHE_BUDGET));
             PromptSet set = weighted ? e.prepare(Prompts.read(prompts), tokens, DivergenceEngine.Progress.NONE) : null) {
            CheckpointExport.Summary s = CheckpointExport.write(e, trial, out, dtype, set, stored);
            s.notes().forEach(n -> System.out.println("  " + n));
            System.out.printf(Locale.ROOT, "apply: %d matrices compressed, %d tensors, %d files, %.1f MB of %s weights,"
                    + " %s, in %s%n", s.compressed(), s.tensors(), s.files(), s.bytes() / 1e6, s.dtype(), format, s.out());
        }
        return 0;
    }
}
