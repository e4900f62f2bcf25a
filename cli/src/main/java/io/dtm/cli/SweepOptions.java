package io.dtm.cli;

import io.dtm.engine.LlamaConfig;
import io.dtm.engine.ModelFiles;
import io.dtm.planner.SweepRequests;
import io.dtm.planner.TrialPlanner;
import io.dtm.schemas.avro.ComponentInfo;
import io.dtm.schemas.avro.SweepRequest;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** What a sweep measures and how it steps and commits; shared by {@code sweep start} and {@code demo}. */
final class SweepOptions {

    @Option(names = "--model", description = "Model directory as the workers resolve it (default: the bundled brown-llama-8m).")
    Path model;

    @Option(names = "--model-name",
            description = "The model as workers should resolve it, e.g. a name under their --model-root (default: --model's absolute path).")
    String modelName;

    @Option(names = "--prompts", description = "Prompt file, one prompt per line (default: the demo's own 64 prompts).")
    Path prompts;

    @Option(names = "--tokens", defaultValue = "64", description = "Generated tokens N (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--components", defaultValue = ".*", description = "Regex over component names (default: all).")
    String components;

    @Option(names = "--prune-step", defaultValue = "0.1", description = "Sparsity added per prune action; 0: none (default: ${DEFAULT-VALUE}).")
    double pruneStep;

    @Option(names = "--int8", description = "Offer int8_rowwise as an action too (without --kinds).")
    boolean int8;

    @Option(names = "--kinds", split = ",",
            description = "The compressions each component may take: prune, wanda (both stepped by --prune-step),"
                    + " nm:N:M, int4g:G, int8_rowwise (default: prune, and int8_rowwise with --int8).")
    List<String> kinds = new ArrayList<>();

    @Option(names = "--chain", description = "A component that zeroes (prune, wanda, nm) may still quantize (int8, int4g) and the other way round.")
    boolean chain;

    @Option(names = "--rounds", defaultValue = "3", description = "Greedy rounds (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--commit", defaultValue = "1",
            description = "What a round commits: K | top:K | fraction:F | floor:X | cumulative-floor:X; 0 only ranks (default: ${DEFAULT-VALUE}).")
    String commit;

    @Option(names = "--floor", defaultValue = "0", description = "Never commit a candidate at or below this FDTM (default: ${DEFAULT-VALUE}).")
    double floor;

    @Option(names = "--target-sparsity", defaultValue = "1.0",
            description = "Stop at this overall sparsity (default: ${DEFAULT-VALUE}); with --iterations, the target to allocate.")
    double targetSparsity;

    @Option(names = "--shard-size", defaultValue = "32", description = "Prompts per trial shard (default: ${DEFAULT-VALUE}).")
    int shardSize;

    @Option(names = "--sweep-id", description = "Sweep id (default: derived from the time).")
    String sweepId;

    @Mixin
    AllocationOptions allocation;

    Path modelDir() {
        return model != null ? model : Launcher.home().resolve("models/brown-llama-8m");
    }

    /** The model's components whose names match {@code regex}, with their parameter counts and input widths. */
    static List<ComponentInfo> components(LlamaConfig config, String regex) {
        Pattern pattern = Pattern.compile(regex);
        List<ComponentInfo> selected = new ArrayList<>();
        for (String name : config.componentNames()) {
            if (pattern.matcher(name).matches()) {
                long[] shape = config.shapeOf(name);
                selected.add(new ComponentInfo(name, shape[0] * shape[1], (int) shape[1]));
            }
        }
        return selected;
    }

    /** Builds and validates the sweep: components come from the model's config.json, matched by the regex. */
    SweepRequest request() throws IOException {
        return request(List.of());
    }

    /** {@link #request()}, a target allocation without {@code --text} measuring {@code defaultText}. */
    SweepRequest request(List<String> defaultText) throws IOException {
        Path dir = modelDir().toAbsolutePath().normalize();
        LlamaConfig config = LlamaConfig.read(dir);
        if (tokens >= config.maxPositionEmbeddings()) {
            throw new IllegalArgumentException("--tokens " + tokens + " leaves no position for a prompt: " + dir
                    + " has " + config.maxPositionEmbeddings() + " (max_position_embeddings) for prompt and continuation");
        }
        List<ComponentInfo> selected = components(config, components);
        if (selected.isEmpty()) {
            throw new IllegalArgumentException("--components '" + components + "' matches no component of " + dir
                    + " (names look like model.layers.0.self_attn.q_proj)");
        }
        List<String> promptList = prompts != null ? Prompts.read(prompts) : Prompts.demo();
        String id = sweepId != null ? sweepId : "sweep-" + Long.toString(System.currentTimeMillis(), 36);
        String published = modelName != null ? modelName : dir.toString();
        int sourceBits = ModelFiles.resolve(dir, null).weightBits();
        SweepRequest sweep = SweepRequest.newBuilder()
                .setSweepId(id).setModel(published)
                .setPromptSetId(TrialPlanner.promptSetId(published, tokens, promptList))
                .setPrompts(promptList).setTokens(tokens).setComponentRegex(components).setComponents(selected)
                .setPruneStep(pruneStep).setInt8(int8).setKinds(new ArrayList<>(kinds)).setChain(chain)
                .setSourceBits(sourceBits).setRounds(rounds).setCommitRule(commit).setFdtmFloor(floor)
                .setTargetSparsity(targetSparsity).setShardSize(shardSize).setCreatedAtMs(System.currentTimeMillis())
                .build();
        sweep.setAllocation(allocation.request(defaultText));
        SweepRequests.validate(sweep);
        return sweep;
    }
}
