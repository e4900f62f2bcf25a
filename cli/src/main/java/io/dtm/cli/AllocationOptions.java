package io.dtm.cli;

import io.dtm.schemas.avro.AllocationRequest;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * The target-allocation options of {@code sweep start} and {@code demo} (dtm-spec "Target allocation"): given
 * {@code --iterations}, the sweep reaches {@code --target-sparsity} in that many iterations instead of stepping greedily.
 */
final class AllocationOptions {

    static final String DEFAULT_METRIC = "fdtm";
    static final int DEFAULT_WINDOW = 128;

    @Option(names = "--iterations",
            description = "Target allocation: reach --target-sparsity T, within (0, 1), in K iterations of 3 trials per"
                    + " component (the spec's default is 4); without it the sweep is greedy.")
    Integer iterations;

    @Option(names = "--metric", description = "Target allocation: what guides it, fdtm or fdt-q:Q (default: " + DEFAULT_METRIC + ").")
    String metric;

    @Option(names = "--text",
            description = "Target allocation: also measure perplexity, KL to the base model and top-1 agreement of every"
                    + " iteration and baseline on this text, one document per line (the demo has its own).")
    Path text;

    @Option(names = "--window", description = "Tokens per text window (default: " + DEFAULT_WINDOW + ").")
    Integer window;

    /**
     * The sweep's allocation, or null for a greedy sweep; checked field by field where the sweep is validated.
     *
     * @param defaultText the text to measure when {@code --text} is not given (empty: none)
     */
    AllocationRequest request(List<String> defaultText) throws IOException {
        if (iterations == null) {
            if (metric != null || text != null || window != null) {
                throw new IllegalArgumentException("--metric, --text and --window belong to a target allocation:"
                        + " give --iterations K (and --target-sparsity T)");
            }
            return null;
        }
        return new AllocationRequest(iterations, metric != null ? metric : DEFAULT_METRIC,
                new ArrayList<>(text != null ? Prompts.text(text) : defaultText),
                window != null ? window : DEFAULT_WINDOW);
    }
}
