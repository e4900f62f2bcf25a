package io.dtm.cli;

import io.dtm.engine.EngineOptions;
import picocli.CommandLine.Option;

/** Engine options shared by every command that loads a model. */
final class EngineMixin {

    @Option(names = "--device", defaultValue = "auto",
            description = "cpu, gpu (the first), gpu:I, or auto: the first GPU if PyTorch sees one (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--dtype", defaultValue = "float32",
            description = "float32, or float16 on a GPU (bfloat16 crashes DJL) (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--batch-size", defaultValue = "64", description = "Prompts per forward batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--cache-mb", defaultValue = "auto",
            description = "Memory the prompt-set cache may use, MB; beyond it the layer intermediates go first, then fewer "
                    + "layers are cached. auto: 2048 on a CPU, a quarter of the GPU's memory on a GPU (default: ${DEFAULT-VALUE}).")
    String cacheMb;

    EngineOptions options() {
        long budget;
        if (cacheMb.equals("auto")) {
            budget = EngineOptions.defaultCacheBudget(device);
        } else {
            try {
                budget = Long.parseLong(cacheMb) << 20;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--cache-mb must be a number of MB or auto, got '" + cacheMb + "'");
            }
        }
        return new EngineOptions(device, dtype, batchSize, budget);
    }
}
