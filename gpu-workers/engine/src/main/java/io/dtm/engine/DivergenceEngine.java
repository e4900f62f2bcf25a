package io.dtm.engine;

import ai.djl.Device;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.TextScore;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * The divergence engine: load a model once, prepare a prompt set once (base continuations, references, layer cache),
 * then score many trials. A trial never modifies the base weights: it runs over a copy of the weight set with its
 * compressed matrices swapped in, made on the weights' device and freed with the trial, so the model is "restored"
 * bit-exactly by construction and never reloaded.
 *
 * <p>Three ways to score a trial give the same FDT/SDT: {@link #score} (starts at the first changed layer from the
 * cache), {@link #scoreFull} (one full teacher-forced forward pass) and {@link #scoreByDecoding} (token-by-token decoding
 * with a KV cache, fed the base continuation, as a generation-based tool would do). The work is split by job:
 * {@link PromptSetBuilder} prepares, {@link TeacherForcedScorer} scores, {@link GreedyDecoder} decodes.
 */
public final class DivergenceEngine implements AutoCloseable {

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(DivergenceEngine.class);

    static {
        EngineRuntime.init();
    }

    /** Receives progress of long phases: a label, work done and total. */
    @FunctionalInterface
    public interface Progress {
        Progress NONE = (phase, done, total) -> {};

        void update(String phase, int done, int total);
    }

    private final ModelFiles files;
    private final LoadedModel m;
    private final HuggingFaceTokenizer tokenizer;
    private final Set<String> components;
    private final PromptSetBuilder builder;
    private final TeacherForcedScorer scorer;
    private final GreedyDecoder decoder;
    private final TextMetrics text;
    private volatile String digest;

    private DivergenceEngine(ModelFiles files, LoadedModel m, HuggingFaceTokenizer tokenizer) {
        this.files = files;
        this.m = m;
        this.tokenizer = tokenizer;
        Set<String> names = new LinkedHashSet<>(m.config().componentNames());
        names.add(ModelWeights.EMBED);
        names.add(ModelWeights.LM_HEAD);
        this.components = names;
        this.builder = new PromptSetBuilder(m);
        this.scorer = new TeacherForcedScorer(m);
        this.decoder = new GreedyDecoder(m);
        this.text = new TextMetrics(m);
    }

    /** Loads config, weights (F32/BF16/F16, single or sharded safetensors) and tokenizer from a Hugging Face directory. */
    public static DivergenceEngine load(Path modelDir, EngineOptions options) throws IOException {
        return load(modelDir, options, null);
    }

    /**
     * Loads a model whose every file (links followed, index shard names included) must lie inside {@code root}; a
     * null root confines nothing but still refuses shard names that climb out of the model directory.
     */
    public static DivergenceEngine load(Path modelDir, EngineOptions options, Path root) throws IOException {
        Device device = options.resolveDevice();
        return load(ModelFiles.resolve(modelDir, root), options, device, options.resolveDataType(device));
    }

    /**
     * Loads for an explicit device and compute dtype. Tests use it to run the float16 path on the CPU (slow there,
     * so the options refuse it to users), the only way to exercise it on a machine without a GPU.
     */
    static DivergenceEngine load(Path modelDir, EngineOptions options, Device device, DataType dtype) throws IOException {
        return load(ModelFiles.resolve(modelDir, null), options, device, dtype);
    }

    private static DivergenceEngine load(ModelFiles files, EngineOptions options, Device device, DataType dtype)
            throws IOException {
        LlamaConfig config = LlamaConfig.read(files.dir());
        long start = System.nanoTime();
        NDManager manager = NDManager.newBaseManager(device, "PyTorch");
        try {
            Scalars scalars = new Scalars(manager);
            ModelWeights weights;
            try (Checkpoint checkpoint = new Checkpoint(files)) {
                weights = ModelWeights.load(checkpoint, config, manager, dtype);
            }
            HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(files.tokenizer())
                    .optAddSpecialTokens(true)
                    .optTruncation(false) // a long prompt must never be cut silently
                    .optPadding(false)
                    .optMaxLength(1 << 20)
                    .build();
            LlamaModel model = new LlamaModel(config, manager, dtype, scalars);
            EngineRuntime.announce(device, dtype == DataType.FLOAT16 ? "float16" : "float32", options.device());
            log.info("loaded {} ({} tensors) on {} in {} ms", files.dir().getFileName(), weights.tensors().size(),
                    EngineRuntime.name(device), (System.nanoTime() - start) / 1_000_000);
            return new DivergenceEngine(files, new LoadedModel(config, options, manager, model, weights, scalars,
                    !device.isGpu()), tokenizer);
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    public LlamaConfig config() {
        return m.config();
    }

    public Path modelDir() {
        return files.dir();
    }

    /**
     * The model's identity: a SHA-256 content digest of its config, tokenizer and weight files (see
     * {@link ModelFiles#digest()}), computed on first use. Two paths to the same bytes share it; a model changed in
     * place does not.
     */
    public String modelDigest() throws IOException {
        String d = digest;
        if (d == null) {
            d = files.digest();
            digest = d;
        }
        return d;
    }

    /** The compute dtype, as the golden format names it. */
    public String dtypeName() {
        return m.model().dtype == DataType.FLOAT16 ? "float16" : "float32";
    }

    public Device device() {
        return m.manager().getDevice();
    }

    /** Every name {@link Trial} may compress: the 7 linear matrices per layer, plus embeddings and LM head if asked. */
    public Set<String> components() {
        return components;
    }

    /** Parameter count of a component (for overall-sparsity accounting). */
    public long parameters(String component) {
        return m.weights().component(requireComponent(component)).getShape().size();
    }

    /**
     * The global magnitude baseline at overall sparsity {@code target} over {@code components} (dtm-spec "Target
     * allocation"): one threshold over all of them, as a schedule of per-component {@code prune} steps.
     */
    public Map<String, CompressionSpec> globalMagnitudeSchedule(double target, List<String> components) {
        components.forEach(this::requireComponent);
        return GlobalMagnitude.schedule(m.weights(), target, components);
    }

    /** Token ids of a prompt, BOS included as the tokenizer's post-processor adds it; never truncated. */
    public int[] encode(String prompt) {
        long[] ids = tokenizer.encode(prompt).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /** Tokenizes, generates the base continuations and prepares the cache. */
    public PromptSet prepare(List<String> prompts, int tokens, Progress progress) {
        List<int[]> ids = prompts.stream().map(this::encode).toList();
        return prepare(ids, generate(ids, tokens, Trial.none(), progress), progress);
    }

    /**
     * Prepares a prompt set from known base continuations (computed once and shared between workers): one base
     * teacher-forced pass per batch gives the reference tokens and fills the layer cache.
     */
    public PromptSet prepare(List<int[]> promptIds, int[][] continuations, Progress progress) {
        return builder.build(promptIds, continuations, progress);
    }

    /** Fast path: starts each batch at the trial's first changed layer (or its MLP half) from the cache. */
    public TrialScore score(PromptSet set, Trial trial) {
        return withCompressed(trial, set, PhaseClock.OFF,
                w -> scorer.score(set, w, entry(set, trial), trial.toString(), PhaseClock.OFF));
    }

    /** Milliseconds per phase of a trial, and of each the part the host took to queue its ops. */
    public record Profile(Map<String, Double> millis, Map<String, Double> hostMillis) {}

    /**
     * The fast path of one trial with every phase waited for and timed (compress, layers, norm+head, compare,
     * read-back): where a trial's time goes. Slower than {@link #score}, which waits only once.
     */
    public Profile profile(PromptSet set, Trial trial) {
        PhaseClock clock = PhaseClock.start();
        withCompressed(trial, set, clock, w -> scorer.score(set, w, entry(set, trial), trial.toString(), clock));
        return new Profile(clock.millis(), clock.hostMillis());
    }

    /** Where a trial can start in this set's cache (its components are known to be the model's). */
    private Entry entry(PromptSet set, Trial trial) {
        return Entry.of(trial.changes().keySet(), m.config().numLayers(), set.cacheStride());
    }

    /** Baseline: one full teacher-forced forward pass per batch, from the embeddings. */
    public TrialScore scoreFull(PromptSet set, Trial trial) {
        return withCompressed(trial, set, PhaseClock.OFF,
                w -> scorer.score(set, w, Entry.EMBEDDINGS, trial.toString(), PhaseClock.OFF));
    }

    /** Share of the fast path's scored rows whose greedy token {@link HeadCertificate} proved without the LM head. */
    public double headRowsProven() {
        return scorer.headRowsProven();
    }

    /** A trial's score together with the top-1 minus top-2 logit margin at every scored position, [prompt][N]. */
    public record DetailedScore(TrialScore score, float[][] margins) {}

    /** Like {@link #score}, and also how close each greedy decision was (from the same forward pass, full LM head). */
    public DetailedScore scoreWithMargins(PromptSet set, Trial trial) {
        return withCompressed(trial, set, PhaseClock.OFF, w -> {
            Entry entry = entry(set, trial);
            int n = set.tokens();
            int[] predicted = new int[set.size() * n];
            float[][] margins = new float[set.size()][n];
            for (PromptSet.Batch batch : set.batches()) {
                try (NDScope scope = new NDScope()) {
                    NDList head = scorer.tokensAndMargins(batch, w, entry);                      // [R], [R]
                    int[] tokens = LoadedModel.toInts(head.get(0));
                    float[] mg = head.get(1).toType(DataType.FLOAT32, false).toFloatArray();
                    System.arraycopy(tokens, 0, predicted, batch.first() * n, tokens.length);
                    for (int b = 0; b < batch.size(); b++) {
                        System.arraycopy(mg, b * n, margins[batch.first() + b], 0, n);
                    }
                }
            }
            return new DetailedScore(TrialScore.compare(predicted, set.flatReferences(), n), margins);
        });
    }

    /**
     * Baseline a generation-based tool uses: token-by-token decoding with a KV cache, prompts batched (left-padded),
     * fed the base continuation so that every position is scored against the same context as the teacher-forced pass
     * (free greedy generation agrees with it up to the first divergence, which is FDT).
     */
    public TrialScore scoreByDecoding(PromptSet set, Trial trial) {
        return withCompressed(trial, set, PhaseClock.OFF, w -> {
            int[][] predicted = decoder.decode(w, set.promptIds(), set.tokens(), set.continuations(), Progress.NONE);
            int[] flat = java.util.Arrays.stream(predicted).flatMapToInt(java.util.Arrays::stream).toArray();
            return TrialScore.compare(flat, set.flatReferences(), set.tokens());
        });
    }

    /**
     * Prepares a text for {@link #scoreText}: each line one document, tokenized with BOS and cut into windows of at
     * most {@code window} tokens (dtm-spec "Text metrics"). Fails when no line has 2 tokens to score.
     */
    public TextSet prepareText(List<String> lines, int window) {
        return text.prepare(lines.stream().filter(l -> !l.isBlank()).map(this::encode).toList(), window);
    }

    /**
     * Perplexity, KL to the base model and top-1 agreement of a trial's model on a prepared text; {@code prompts} gives
     * activation-weighted compressions their input norms (null if the trial has none).
     */
    public TextScore scoreText(TextSet set, Trial trial, PromptSet prompts) {
        return withCompressed(trial, prompts, PhaseClock.OFF, w -> text.score(set, w));
    }

    /** Greedy generation of {@code tokens} tokens per prompt by the trial's model (EOS ignored), with a KV cache. */
    public int[][] generate(List<int[]> promptIds, int tokens, Trial trial, Progress progress) {
        return generate(promptIds, tokens, trial, null, progress);
    }

    /** Like {@link #generate(List, int, Trial, Progress)}, activation-weighted compressions taking their norms from {@code set}. */
    public int[][] generate(List<int[]> promptIds, int tokens, Trial trial, PromptSet set, Progress progress) {
        if (tokens < 1) {
            throw new IllegalArgumentException("tokens must be at least 1, got " + tokens);
        }
        return withCompressed(trial, set, PhaseClock.OFF, w -> decoder.decode(w, promptIds, tokens, null, progress));
    }

    /**
     * Runs {@code body} on the trial's model ({@link TrialCompression}); {@code set} gives activation-weighted
     * compressions their input norms (null where there is none). Unknown components fail here, before any work.
     */
    private <T> T withCompressed(Trial trial, PromptSet set, PhaseClock clock, Function<ModelWeights, T> body) {
        trial.changes().keySet().forEach(this::requireComponent);
        if (m.weights().tied() && trial.changes().containsKey(ModelWeights.LM_HEAD)
                && trial.changes().containsKey(ModelWeights.EMBED)) {
            throw new IllegalArgumentException("lm_head and model.embed_tokens are one tied matrix in "
                    + files.dir().getFileName() + ": compress it under one name only");
        }
        return TrialCompression.apply(m, trial, set, clock, body);
    }

    private String requireComponent(String component) {
        if (!components.contains(component)) {
            throw new IllegalArgumentException("unknown component '" + component + "' for model "
                    + files.dir().getFileName() + " (components look like model.layers.0.self_attn.q_proj, 0 ≤ layer < "
                    + m.config().numLayers() + ")");
        }
        return component;
    }

    ModelFiles files() {
        return files;
    }

    /**
     * Every scheduled matrix compressed as dtm-spec says, from this engine's weights, as float32 values row-major;
     * {@code set} gives activation-weighted compressions their input norms (null if the schedule has none).
     */
    Map<String, float[]> compressedWeights(Trial schedule, PromptSet set) {
        return withCompressed(schedule, set, PhaseClock.OFF, w -> {
            Map<String, float[]> out = new HashMap<>();
            for (String component : schedule.changes().keySet()) {
                out.put(component, w.component(component).toType(DataType.FLOAT32, false).toFloatArray());
            }
            return out;
        });
    }

    /** Bit pattern of a base weight, for the restoration check in tests. */
    float[] baseWeight(String component) {
        try (NDScope scope = new NDScope()) {
            return m.weights().component(requireComponent(component)).toType(DataType.FLOAT32, false).toFloatArray();
        }
    }

    @Override
    public void close() {
        tokenizer.close();
        m.scalars().close();
        m.manager().close();
    }
}
