package io.dtm.engine;

import ai.djl.Device;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.dtm.schemas.CompressionSpec;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.IntStream;

/**
 * The divergence engine: load a model once, prepare a prompt set once (base continuations, references, layer cache),
 * then score many trials. A trial never modifies the base weights: it runs over an overlay of compressed copies, so
 * the model is "restored" bit-exactly by construction and never reloaded.
 *
 * <p>Three ways to score a trial give the same FDT/SDT: {@link #score} (starts at the first changed layer from the
 * cache), {@link #scoreFull} (one full teacher-forced forward pass) and {@link #scoreByDecoding} (token-by-token decoding
 * with a KV cache, fed the base continuation, as a generation-based tool would do).
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
    private final Path modelDir;
    private volatile String digest;
    private final LlamaConfig config;
    private final EngineOptions options;
    private final NDManager manager;
    private final LlamaModel model;
    private final LlamaWeights weights;
    private final HuggingFaceTokenizer tokenizer;
    private final Set<String> components;
    private final LongAdder headRows = new LongAdder();
    private final LongAdder headRowsProven = new LongAdder();

    private DivergenceEngine(ModelFiles files, LlamaConfig config, EngineOptions options, NDManager manager,
                             LlamaWeights weights, HuggingFaceTokenizer tokenizer) {
        this.files = files;
        this.modelDir = files.dir();
        this.config = config;
        this.options = options;
        this.manager = manager;
        this.weights = weights;
        this.tokenizer = tokenizer;
        this.model = new LlamaModel(config, manager, weights.get("model.norm.weight").getDataType());
        Set<String> names = new LinkedHashSet<>(config.componentNames());
        names.add("model.embed_tokens");
        names.add("lm_head");
        this.components = names;
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
        NDManager manager = NDManager.newBaseManager(device, "PyTorch");
        try {
            LlamaWeights weights = LlamaWeights.load(files, config, manager, dtype);
            HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(files.tokenizer())
                    .optAddSpecialTokens(true)
                    .optTruncation(false) // a long prompt must never be cut silently
                    .optPadding(false)
                    .optMaxLength(1 << 20)
                    .build();
            return new DivergenceEngine(files, config, options, manager, weights, tokenizer);
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    public LlamaConfig config() {
        return config;
    }

    public Path modelDir() {
        return modelDir;
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
        return model.dtype == DataType.FLOAT16 ? "float16" : "float32";
    }

    public Device device() {
        return manager.getDevice();
    }

    /** Every name {@link Trial} may compress: the 7 linear matrices per layer, plus embeddings and LM head if asked. */
    public Set<String> components() {
        return components;
    }

    /** Parameter count of a component (for overall-sparsity accounting). */
    public long parameters(String component) {
        return weights.require(requireComponent(component) + ".weight").getShape().size();
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

    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            l[i] = ids[i];
        }
        return tokenizer.decode(l, false);
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
        if (promptIds.isEmpty()) {
            throw new IllegalArgumentException("the prompt set is empty");
        }
        if (continuations.length != promptIds.size()) {
            throw new IllegalArgumentException(continuations.length + " continuations for " + promptIds.size() + " prompts");
        }
        int tokens = continuations[0].length;
        if (tokens < 1) {
            throw new IllegalArgumentException("continuations must have at least one token");
        }
        for (int p = 0; p < promptIds.size(); p++) {
            if (promptIds.get(p).length == 0) {
                throw new IllegalArgumentException("prompt " + p + " has no tokens");
            }
            if (continuations[p].length != tokens) {
                throw new IllegalArgumentException("continuation " + p + " has " + continuations[p].length
                        + " tokens, expected " + tokens);
            }
        }
        CachePlan plan = cachePlan(promptIds, tokens);
        List<PromptSet.Batch> batches = new ArrayList<>();
        int[][] references = new int[promptIds.size()][];
        long cacheBytes = 0;
        try {
            for (int first = 0; first < promptIds.size(); first += options.batchSize()) {
                int size = Math.min(options.batchSize(), promptIds.size() - first);
                PromptSet.Batch batch = baseBatch(promptIds, continuations, first, size, tokens, plan);
                batches.add(batch);
                for (int b = 0; b < size; b++) {
                    references[first + b] = java.util.Arrays.copyOfRange(batch.references(), b * tokens, (b + 1) * tokens);
                }
                cacheBytes += batch.cacheBytes();
                progress.update("reference pass", first + size, promptIds.size());
            }
        } catch (RuntimeException e) {
            batches.forEach(PromptSet.Batch::close);
            throw e;
        }
        return new PromptSet(tokens, promptIds, continuations, references, batches, plan.stride(), cacheBytes);
    }

    /**
     * What the cache keeps: every {@code stride}-th layer input (1: all, plus the mid-layer states and the LM-head
     * certificate; 0: nothing), and, with stride 1, each layer's intermediates ({@code parts}) when the budget allows.
     */
    record CachePlan(int stride, boolean parts) {}

    /**
     * The richest cache that fits the budget. Sizes per batch of B prompts padded to T positions, in the compute dtype:
     * one state is {@code B·T·D}; the layer inputs, mid-layer states and final state are {@code 2L + 1} of them; the
     * intermediates add {@code L · B·T·(2·H·E + 2·K·E + 2·F)}; the certificate is {@link HeadCertificate#bytes}.
     */
    private CachePlan cachePlan(List<int[]> promptIds, int tokens) {
        long positions = 0;
        long certificateBytes = 0;
        for (int first = 0; first < promptIds.size(); first += options.batchSize()) {
            int size = Math.min(options.batchSize(), promptIds.size() - first);
            positions += (long) size * paddedLength(promptIds, first, size, tokens);
            certificateBytes += HeadCertificate.bytes((long) size * tokens, config.vocabSize(), config.hiddenSize());
        }
        long unit = model.dtype == DataType.FLOAT16 ? 2 : 4;
        long entryBytes = positions * config.hiddenSize() * unit;
        int layers = config.numLayers();
        long perPosition = 2L * config.numHeads() * config.headDim() + 2L * config.numKvHeads() * config.headDim()
                + 2L * config.intermediateSize();
        long partsBytes = layers * positions * perPosition * unit;
        long full = entryBytes * (2L * layers + 1) + certificateBytes;
        long budget = options.cacheBudgetBytes();
        if (full + partsBytes <= budget) {
            return new CachePlan(1, true);
        }
        if (full <= budget) {
            log.info("layer intermediates ({} bytes) exceed the cache budget of {}; caching layer states only",
                    partsBytes, budget);
            return new CachePlan(1, false);
        }
        for (int stride = 2; stride <= layers; stride++) {
            if (entryBytes * ((layers + stride - 1) / stride) + certificateBytes <= budget) {
                log.warn("layer cache of {} bytes exceeds the budget of {}; caching every {}-th layer",
                        full, budget, stride);
                return new CachePlan(stride, false);
            }
        }
        log.warn("even one cached layer ({} bytes) exceeds the budget of {}; every trial runs in full",
                entryBytes + certificateBytes, budget);
        return new CachePlan(0, false);
    }

    /** Builds a right-padded batch of x ++ y[0..N-2], runs the base model over it and keeps what the stride asks. */
    private PromptSet.Batch baseBatch(List<int[]> promptIds, int[][] continuations, int first, int size, int tokens,
                                      CachePlan plan) {
        int stride = plan.stride();
        int length = paddedLength(promptIds, first, size, tokens);
        long[] ids = new long[size * length];
        for (int b = 0; b < size; b++) {
            int[] prompt = promptIds.get(first + b);
            for (int j = 0; j < prompt.length; j++) {
                ids[b * length + j] = prompt[j];
            }
            for (int i = 0; i < tokens - 1; i++) {
                ids[b * length + prompt.length + i] = continuations[first + b][i];
            }
        }
        int layers = config.numLayers();
        NDArray[] inputs = new NDArray[layers + 1];
        NDArray[] mids = new NDArray[layers];
        LlamaModel.Attention[] attention = new LlamaModel.Attention[layers];
        LlamaModel.Mlp[] mlp = new LlamaModel.Mlp[layers];
        NDArray idsArray = keep(manager.create(ids, new Shape(size, length)));
        NDArray mask = causalMask(length);
        LlamaModel.Queries scored = scoredQueries(promptIds, first, size, tokens, length);
        LlamaModel.Rope rope;
        try (NDScope scope = new NDScope()) {
            NDArray positions = manager.arange(0, length, 1, DataType.INT64).reshape(1, length);
            LlamaModel.Rope r = model.rope(positions);
            rope = new LlamaModel.Rope(keep(r.cos()), keep(r.sin()));
        }
        int[] references;
        HeadCertificate certificate;
        try (NDScope scope = new NDScope()) {
            NDArray x = model.embed(weights, idsArray);                                 // [B,T,D]
            for (int l = 0; l < layers; l++) {
                if (stride > 0 && l % stride == 0) {
                    inputs[l] = keep(x);
                }
                LlamaModel.Attention a = model.attention(weights, l, x, rope, mask, null, LlamaModel.Attention.NONE,
                        null);
                if (stride == 1) {
                    mids[l] = keep(a.out());                                            // [B,T,D]
                }
                LlamaModel.Mlp m = model.mlp(weights, l, a.out(), LlamaModel.Mlp.NONE);
                if (plan.parts()) {
                    attention[l] = new LlamaModel.Attention(keep(a.q()), keep(a.k()), keep(a.v()), keep(a.context()), null);
                    mlp[l] = new LlamaModel.Mlp(keep(m.gate()), keep(m.up()), null);
                }
                x = m.out();                                                            // [B,T,D]
            }
            if (stride == 1) {
                inputs[layers] = keep(x);
            }
            NDArray normed = model.finalNorm(weights, scored.flat(x));                 // [R,D]
            NDArray argmax = model.argmaxTokens(weights, normed);                      // [R]
            references = toInts(argmax);
            certificate = stride > 0 ? HeadCertificate.build(model, weights, normed, argmax) : null;
        }
        return new PromptSet.Batch(first, size, length, idsArray, mask, rope, scored, references, inputs, mids,
                attention, mlp, certificate);
    }

    /** T of a teacher-forced batch: its longest x ++ y[0..N-2]. */
    private static int paddedLength(List<int[]> promptIds, int first, int size, int tokens) {
        int length = 0;
        for (int b = 0; b < size; b++) {
            length = Math.max(length, promptIds.get(first + b).length + tokens - 1);
        }
        return length;
    }

    /** Takes an array out of the current scope so it lives as long as its prompt set. */
    private static NDArray keep(NDArray a) {
        NDScope.unregister(a);
        return a;
    }

    /**
     * The scored positions of a batch as queries: row b·T + P_b − 1 + i predicts token i of prompt b's continuation, at
     * position P_b − 1 + i, and sees the keys up to it.
     */
    private LlamaModel.Queries scoredQueries(List<int[]> promptIds, int first, int size, int tokens, int length) {
        long[] rows = new long[size * tokens];
        long[] positions = new long[size * tokens];
        float[] mask = new float[size * tokens * length];
        for (int b = 0; b < size; b++) {
            for (int i = 0; i < tokens; i++) {
                int position = promptIds.get(first + b).length - 1 + i;
                rows[b * tokens + i] = (long) b * length + position;
                positions[b * tokens + i] = position;
                for (int k = position + 1; k < length; k++) {
                    mask[(b * tokens + i) * length + k] = model.maskValue();
                }
            }
        }
        try (NDScope scope = new NDScope()) {
            LlamaModel.Rope rope = model.rope(manager.create(positions, new Shape(size, tokens)));
            return new LlamaModel.Queries(keep(manager.create(rows, new Shape(rows.length))), tokens,
                    new LlamaModel.Rope(keep(rope.cos()), keep(rope.sin())),
                    keep(toDtype(manager.create(mask, new Shape(size, 1, 1, tokens, length)), model.dtype)));
        }
    }

    /** Additive causal mask [T,T]: 0 where key ≤ query, the dtype's most negative value above the diagonal. */
    private NDArray causalMask(int length) {
        float[] m = new float[length * length];
        for (int q = 0; q < length; q++) {
            for (int k = q + 1; k < length; k++) {
                m[q * length + k] = model.maskValue();
            }
        }
        try (NDScope scope = new NDScope()) {
            return keep(toDtype(manager.create(m, new Shape(length, length)), model.dtype));
        }
    }

    /** Fast path: starts each batch at the trial's first changed layer (or its MLP half) from the cache. */
    public TrialScore score(PromptSet set, Trial trial) {
        return teacherForced(set, trial, true);
    }

    /** Baseline: one full teacher-forced forward pass per batch, from the embeddings. */
    public TrialScore scoreFull(PromptSet set, Trial trial) {
        return teacherForced(set, trial, false);
    }

    private TrialScore teacherForced(PromptSet set, Trial trial, boolean useCache) {
        return withCompressed(trial, w -> {
            int[] predicted = new int[set.size() * set.tokens()];
            Entry entry = useCache ? entry(trial, set.cacheStride()) : Entry.EMBEDDINGS;
            for (PromptSet.Batch batch : set.batches()) {
                int[] out = forwardFrom(batch, w, entry, useCache);
                System.arraycopy(out, 0, predicted, batch.first() * set.tokens(), out.length);
            }
            return TrialScore.compare(predicted, set.flatReferences(), set.tokens());
        });
    }

    /** Runs {@code body} on the base weights overlaid with the trial's compressed copies, and frees those after. */
    private <T> T withCompressed(Trial trial, java.util.function.Function<Weights, T> body) {
        Map<String, NDArray> compressed = compress(trial);
        try {
            return body.apply(weights.with(compressed));
        } finally {
            compressed.values().forEach(NDArray::close);
        }
    }

    /**
     * Where a trial's forward pass starts: at a cached layer input, at a cached mid-layer state, or from scratch; and
     * which matrices it changes in that first layer (short names such as {@code q_proj}), so the rest is reused.
     */
    record Entry(int layer, boolean mlpHalf, boolean fromEmbeddings, Set<String> changed) {
        static final Entry EMBEDDINGS = new Entry(0, false, true, Set.of());
    }

    private Entry entry(Trial trial, int stride) {
        int layers = config.numLayers();
        int first = layers;
        for (String component : trial.changes().keySet()) {
            if (component.equals("model.embed_tokens")) {
                return Entry.EMBEDDINGS;
            }
            if (!component.equals("lm_head")) {
                first = Math.min(first, layerOf(component));
            }
        }
        if (stride == 0) {
            return Entry.EMBEDDINGS;
        }
        if (stride != 1) {
            // inputs[layers] (the final state) is cached only with stride 1: start below it
            return new Entry(Math.min(first, layers - 1) / stride * stride, false, false, Set.of());
        }
        Set<String> changed = new HashSet<>();
        for (String component : trial.changes().keySet()) {
            if (!component.equals("lm_head") && layerOf(component) == first) {
                changed.add(component.substring(component.lastIndexOf('.') + 1));
            }
        }
        boolean mlpOnly = changed.stream().allMatch(MLP_MATRICES::contains);
        return new Entry(first, first < layers && mlpOnly, false, Set.copyOf(changed));
    }

    private static final Set<String> MLP_MATRICES = Set.of("gate_proj", "up_proj", "down_proj");

    private static int layerOf(String component) {
        String rest = component.substring("model.layers.".length());
        return Integer.parseInt(rest.substring(0, rest.indexOf('.')));
    }

    private int[] forwardFrom(PromptSet.Batch batch, Weights w, Entry entry, boolean useCache) {
        try (NDScope scope = new NDScope()) {
            NDArray h = model.finalNorm(w, scoredRows(batch, w, entry));                // [R,D]
            HeadCertificate certificate = batch.certificate();
            if (!useCache || certificate == null || !certificate.covers(w)) {
                return toInts(model.argmaxTokens(w, h));                               // [R]
            }
            boolean[] proven = certificate.certify(h).toBooleanArray();                // [R] provably still r
            long[] open = IntStream.range(0, proven.length).filter(i -> !proven[i])
                    .mapToLong(i -> i).toArray();
            int[] tokens = batch.references().clone();
            if (open.length > 0) {
                NDArray rows = manager.create(open, new Shape(open.length));           // [U]
                int[] chosen = toInts(model.argmaxTokens(w, h.get(rows)));              // [U] through the real head
                for (int i = 0; i < open.length; i++) {
                    tokens[(int) open[i]] = chosen[i];
                }
            }
            headRows.add(proven.length);
            headRowsProven.add(proven.length - open.length);
            return tokens;
        }
    }

    /** Share of the fast path's scored rows whose greedy token {@link HeadCertificate} proved without the LM head. */
    public double headRowsProven() {
        long rows = headRows.sum();
        return rows == 0 ? 0 : (double) headRowsProven.sum() / rows;
    }

    /** Runs the layers from the entry point and returns the final hidden states of the scored rows, [R,D]. */
    private NDArray scoredRows(PromptSet.Batch batch, Weights w, Entry entry) {
        NDArray x;
        int from = entry.layer();
        int layers = config.numLayers();
        if (entry.fromEmbeddings()) {
            x = model.embed(w, batch.ids());                                            // [B,T,D]
        } else {
            x = entry.mlpHalf() ? batch.mids()[from] : batch.inputs()[from];            // [B,T,D] base states
        }
        if (from == layers) {
            return batch.scored().flat(x);                                              // [R,D] only lm_head changed
        }
        for (int l = from; l < layers; l++) {
            boolean entering = l == from && !entry.fromEmbeddings();
            // no position attends to the last layer's output: there only the scored positions query and run the MLP
            LlamaModel.Queries queries = l == layers - 1 ? batch.scored() : null;
            if (entering && entry.mlpHalf()) {
                x = queries == null ? x : queries.of(x);                                // [B,T',D]
            } else {
                LlamaModel.Attention reuse = entering ? batch.attentionReuse(l, entry.changed(), queries)
                        : LlamaModel.Attention.NONE;
                x = model.attention(w, l, x, batch.rope(), batch.mask(), null, reuse, queries).out(); // [B,T',D]
            }
            LlamaModel.Mlp reuse = entering && entry.mlpHalf() ? batch.mlpReuse(l, entry.changed(), queries)
                    : LlamaModel.Mlp.NONE;
            x = model.mlp(w, l, x, reuse).out();                                        // [B,T',D]
        }
        return x.reshape(-1, config.hiddenSize());                                      // [R,D] T' = N
    }

    /** A trial's score together with the top-1 minus top-2 logit margin at every scored position, [prompt][N]. */
    public record DetailedScore(TrialScore score, float[][] margins) {}

    /** Like {@link #score}, and also how close each greedy decision was (from the same forward pass). */
    public DetailedScore scoreWithMargins(PromptSet set, Trial trial) {
        return withCompressed(trial, w -> {
            int n = set.tokens();
            int[] predicted = new int[set.size() * n];
            float[][] margins = new float[set.size()][n];
            Entry entry = entry(trial, set.cacheStride());
            for (PromptSet.Batch batch : set.batches()) {
                try (NDScope scope = new NDScope()) {
                    NDList head = model.tokensAndMargins(w, model.finalNorm(w, scoredRows(batch, w, entry))); // [R], [R]
                    int[] tokens = toInts(head.get(0));
                    float[] m = head.get(1).toType(DataType.FLOAT32, false).toFloatArray();
                    System.arraycopy(tokens, 0, predicted, batch.first() * n, tokens.length);
                    for (int b = 0; b < batch.size(); b++) {
                        System.arraycopy(m, b * n, margins[batch.first() + b], 0, n);
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
        return withCompressed(trial, w -> {
            int[][] predicted = decode(w, set.promptIds(), set.tokens(), set.continuations(), Progress.NONE);
            int[] flat = java.util.Arrays.stream(predicted).flatMapToInt(java.util.Arrays::stream).toArray();
            return TrialScore.compare(flat, set.flatReferences(), set.tokens());
        });
    }

    /** Greedy generation of {@code tokens} tokens per prompt by the trial's model (EOS ignored), with a KV cache. */
    public int[][] generate(List<int[]> promptIds, int tokens, Trial trial, Progress progress) {
        if (tokens < 1) {
            throw new IllegalArgumentException("tokens must be at least 1, got " + tokens);
        }
        return withCompressed(trial, w -> decode(w, promptIds, tokens, null, progress));
    }

    /** Decodes {@code n} tokens; {@code forced} (if not null) is fed instead of the model's own choice. */
    private int[][] decode(Weights w, List<int[]> promptIds, int n, int[][] forced, Progress progress) {
        int[][] out = new int[promptIds.size()][n];
        int layers = config.numLayers();
        for (int first = 0; first < promptIds.size(); first += options.batchSize()) {
            int size = Math.min(options.batchSize(), promptIds.size() - first);
            int width = 0;
            for (int b = 0; b < size; b++) {
                width = Math.max(width, promptIds.get(first + b).length);
            }
            int[] pad = new int[size];
            long[] ids = new long[size * width];
            long[] positions = new long[size * width];
            float[] mask = new float[size * width * width];
            for (int b = 0; b < size; b++) {
                int[] prompt = promptIds.get(first + b);
                pad[b] = width - prompt.length;
                for (int j = 0; j < width; j++) {
                    ids[b * width + j] = j < pad[b] ? 0 : prompt[j - pad[b]];
                    positions[b * width + j] = Math.max(0, j - pad[b]);
                    for (int k = 0; k < width; k++) {
                        boolean visible = k <= j && k >= pad[b];
                        mask[(b * width + j) * width + k] = visible ? 0f : model.maskValue();
                    }
                }
            }
            try (KvCache cache = new KvCache(layers)) {
                int[] next = decodeStep(w, cache, ids, positions, mask, size, width, width);
                for (int step = 0; ; step++) {
                    for (int b = 0; b < size; b++) {
                        out[first + b][step] = next[b];
                    }
                    progress.update("decoding", first * n + size * (step + 1), promptIds.size() * n);
                    if (step == n - 1) {
                        break;
                    }
                    int keys = width + step + 1;
                    long[] stepIds = new long[size];
                    long[] stepPositions = new long[size];
                    float[] stepMask = new float[size * keys];
                    for (int b = 0; b < size; b++) {
                        stepIds[b] = forced != null ? forced[first + b][step] : next[b];
                        stepPositions[b] = promptIds.get(first + b).length + step;
                        for (int k = 0; k < pad[b]; k++) {
                            stepMask[b * keys + k] = model.maskValue();
                        }
                    }
                    next = decodeStep(w, cache, stepIds, stepPositions, stepMask, size, 1, keys);
                }
            }
        }
        return out;
    }

    /** One decoding step over {@code t} new positions per row: returns the greedy token after each row's last one. */
    private int[] decodeStep(Weights w, KvCache cache, long[] ids, long[] positions, float[] mask, int b, int t, int s) {
        try (NDScope scope = new NDScope()) {
            NDArray idArray = manager.create(ids, new Shape(b, t));                      // [B,T]
            LlamaModel.Rope rope = model.rope(manager.create(positions, new Shape(b, t))); // [B,1,T,E]
            NDArray maskArray = toDtype(manager.create(mask, new Shape(b, 1, 1, t, s)), model.dtype); // [B,1,1,T,S]
            NDArray x = model.embed(w, idArray);                                        // [B,T,D]
            for (int l = 0; l < config.numLayers(); l++) {
                x = model.mlp(w, l, model.attention(w, l, x, rope, maskArray, cache));  // [B,T,D]
            }
            NDArray last = x.get(":, -1, :");                                           // [B,D]
            return toInts(model.argmaxTokens(w, model.finalNorm(w, last)));             // [B]
        }
    }

    /** The compressed copies of a trial's components, made in Java from the base weights (which stay untouched). */
    private Map<String, NDArray> compress(Trial trial) {
        Map<String, NDArray> out = new HashMap<>();
        boolean tied = weights.get("lm_head.weight") == weights.get("model.embed_tokens.weight");
        if (tied && trial.changes().containsKey("lm_head") && trial.changes().containsKey("model.embed_tokens")) {
            throw new IllegalArgumentException("lm_head and model.embed_tokens are one tied matrix in "
                    + modelDir.getFileName() + ": compress it under one name only");
        }
        try (NDScope scope = new NDScope()) {
            for (Map.Entry<String, CompressionSpec> change : trial.changes().entrySet()) {
                String name = requireComponent(change.getKey()) + ".weight";
                NDArray base = weights.require(name);
                Shape shape = base.getShape();
                float[] values = toDtype(base, DataType.FLOAT32).toFloatArray();
                float[] changed = Compression.apply(change.getValue(), values, (int) shape.get(0), (int) shape.get(1));
                NDArray c = keep(toDtype(manager.create(changed, shape), base.getDataType()));
                out.put(name, c);
                if (tied && (name.equals("lm_head.weight") || name.equals("model.embed_tokens.weight"))) {
                    // one matrix serves both roles, so compressing it changes both
                    out.put(name.equals("lm_head.weight") ? "model.embed_tokens.weight" : "lm_head.weight", c);
                }
            }
            return out;
        } catch (RuntimeException e) {
            out.values().forEach(NDArray::close);
            throw e;
        }
    }

    private static NDArray toDtype(NDArray a, DataType dtype) {
        return a.getDataType() == dtype ? a : a.toType(dtype, false);
    }

    private String requireComponent(String component) {
        if (!components.contains(component)) {
            throw new IllegalArgumentException("unknown component '" + component + "' for model " + modelDir.getFileName()
                    + " (components look like model.layers.0.self_attn.q_proj, 0 ≤ layer < " + config.numLayers() + ")");
        }
        return component;
    }

    private static int[] toInts(NDArray a) {
        long[] l = a.toLongArray();
        int[] out = new int[l.length];
        for (int i = 0; i < l.length; i++) {
            out[i] = (int) l[i];
        }
        return out;
    }

    /** Bit pattern of a base weight, for the restoration check in tests. */
    float[] baseWeight(String component) {
        try (NDScope scope = new NDScope()) {
            return toDtype(weights.require(requireComponent(component) + ".weight"), DataType.FLOAT32).toFloatArray();
        }
    }

    @Override
    public void close() {
        tokenizer.close();
        manager.close();
    }
}
