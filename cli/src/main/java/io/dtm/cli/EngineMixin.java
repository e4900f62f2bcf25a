package io.dtm.cli;

import io.dtm.engine.EngineOptions;
import picocli.CommandLine.Option;

/** Engine options shared by every command that loads a model. */
final class EngineMixin {

    @Option(names = "--device", defaultValue = "auto", description = "cpu, gpu or auto (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--dtype", defaultValue = "float32",
            description = "float32, or float16 on a GPU (bfloat16 crashes DJL) (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--batch-size", defaultValue = "64", description = "Prompts per forward batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--cache-mb", defaultValue = "2048",
            description = "Memory the prompt-set cache may use, MB; beyond it the layer intermediates go first, then fewer "
                    + "layers are cached (default: ${DEFAULT-VALUE}).")
    long cacheMb;

    EngineOptions options() {
        return new EngineOptions(device, dtype, batchSize, cacheMb << 20);
    }
}
