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
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

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
        // DJL probes 169.254.169.254 at start-up unless told it is offline; every JVM that loads the engine sets it.
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
    }

    /** Receives progress of long phases: a label, work done and total. */
    @FunctionalInterface
    public interface Progress {
        Progress NONE = (phase, done, total) -> {};

        void update(String phase, int done, int total);
    }

    private final Path modelDir;
    private final LlamaConfig config;
    private final EngineOptions options;
    private final NDManager manager;
    private final LlamaModel model;
    private final LlamaWeights weights;
    private final HuggingFaceTokenizer tokenizer;
    private final Set<String> components;

    private DivergenceEngine(Path modelDir, LlamaConfig config, EngineOptions options, NDManager manager,
                             LlamaWeights weights, HuggingFaceTokenizer tokenizer) {
        this.modelDir = modelDir;
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
        if (!Files.isDirectory(modelDir)) {
            throw new FileNotFoundException("model directory " + modelDir + " does not exist");
        }
        LlamaConfig config = LlamaConfig.read(modelDir);
        Path tokenizerFile = modelDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizerFile)) {
            throw new FileNotFoundException("model directory " + modelDir + " has no tokenizer.json");
        }
        Device device = options.resolveDevice();
        DataType dtype = options.resolveDataType(device);
        NDManager manager = NDManager.newBaseManager(device, "PyTorch");
        try {
            LlamaWeights weights = LlamaWeights.load(modelDir, config, manager, dtype);
            HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(tokenizerFile)
                    .optAddSpecialTokens(true)
                    .optTruncation(false) // a long prompt must never be cut silently
                    .optPadding(false)
                    .optMaxLength(1 << 20)
                    .build();
            return new DivergenceEngine(modelDir, config, options, manager, weights, tokenizer);
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
        int stride = cacheStride(promptIds, tokens);
        long bytesPerState = (long) config.hiddenSize() * (model.dtype == DataType.FLOAT16 ? 2 : 4);
        List<PromptSet.Batch> batches = new ArrayList<>();
        int[][] references = new int[promptIds.size()][];
        long cacheBytes = 0;
        try {
            for (int first = 0; first < promptIds.size(); first += options.batchSize()) {
                int size = Math.min(options.batchSize(), promptIds.size() - first);
                PromptSet.Batch batch = baseBatch(promptIds, continuations, first, size, tokens, stride);
                batches.add(batch);
                for (int b = 0; b < size; b++) {
                    references[first + b] = java.util.Arrays.copyOfRange(batch.references(), b * tokens, (b + 1) * tokens);
                }
                long cached = java.util.Arrays.stream(batch.inputs()).filter(a -> a != null).count()
                        + java.util.Arrays.stream(batch.mids()).filter(a -> a != null).count();
                cacheBytes += cached * size * batch.length() * bytesPerState;
                progress.update("reference pass", first + size, promptIds.size());
            }
        } catch (RuntimeException e) {
            batches.forEach(PromptSet.Batch::close);
            throw e;
        }
        return new PromptSet(tokens, promptIds, continuations, references, batches, stride, cacheBytes);
    }

    /** 1 when the whole cache fits the budget; otherwise the smallest stride of cached layer inputs that does; 0: none. */
    private int cacheStride(List<int[]> promptIds, int tokens) {
        long statesPerEntry = 0;
        for (int first = 0; first < promptIds.size(); first += options.batchSize()) {
            int size = Math.min(options.batchSize(), promptIds.size() - first);
            statesPerEntry += (long) size * paddedLength(promptIds, first, size, tokens);
        }
        long entryBytes = statesPerEntry * config.hiddenSize() * (model.dtype == DataType.FLOAT16 ? 2 : 4);
        int layers = config.numLayers();
        if (entryBytes * (2L * layers + 1) <= options.cacheBudgetBytes()) {
            return 1;
        }
        for (int stride = 2; stride <= layers; stride++) {
            if (entryBytes * ((layers + stride - 1) / stride) <= options.cacheBudgetBytes()) {
                log.warn("layer cache of {} bytes exceeds the budget of {}; caching every {}-th layer",
                        entryBytes * (2L * layers + 1), options.cacheBudgetBytes(), stride);
                return stride;
            }
        }
        log.warn("even one cached layer ({} bytes) exceeds the budget of {}; every trial runs in full",
                entryBytes, options.cacheBudgetBytes());
        return 0;
    }

    /** Builds a right-padded batch of x ++ y[0..N-2], runs the base model over it and keeps what the stride asks. */
    private PromptSet.Batch baseBatch(List<int[]> promptIds, int[][] continuations, int first, int size, int tokens,
                                      int stride) {
        int length = paddedLength(promptIds, first, size, tokens);
        long[] ids = new long[size * length];
        long[] rows = new long[size * tokens];
        for (int b = 0; b < size; b++) {
            int[] prompt = promptIds.get(first + b);
            for (int j = 0; j < prompt.length; j++) {
                ids[b * length + j] = prompt[j];
            }
            for (int i = 0; i < tokens - 1; i++) {
                ids[b * length + prompt.length + i] = continuations[first + b][i];
            }
            for (int i = 0; i < tokens; i++) {
                // the logits at position P-1+i predict token i of the continuation
                rows[b * tokens + i] = (long) b * length + prompt.length - 1 + i;
            }
        }
        int layers = config.numLayers();
        NDArray[] inputs = new NDArray[layers + 1];
        NDArray[] mids = new NDArray[layers];
        NDArray idsArray = keep(manager.create(ids, new Shape(size, length)));
        NDArray rowsArray = keep(manager.create(rows, new Shape(rows.length)));
        NDArray mask = causalMask(length);
        LlamaModel.Rope rope;
        try (NDScope scope = new NDScope()) {
            NDArray positions = manager.arange(0, length, 1, DataType.INT64).reshape(1, length);
            LlamaModel.Rope r = model.rope(positions);
            rope = new LlamaModel.Rope(keep(r.cos()), keep(r.sin()));
        }
        int[] references;
        try (NDScope scope = new NDScope()) {
            NDArray x = model.embed(weights, idsArray);                                 // [B,T,D]
            for (int l = 0; l < layers; l++) {
                if (stride > 0 && l % stride == 0) {
                    inputs[l] = keep(x);
                }
                NDArray mid = model.attention(weights, l, x, rope, mask, null);        // [B,T,D]
                if (stride == 1) {
                    mids[l] = keep(mid);
                }
                x = model.mlp(weights, l, mid);                                         // [B,T,D]
            }
            if (stride == 1) {
                inputs[layers] = keep(x);
            }
            references = toInts(model.argmaxTokens(weights, gatherRows(x, rowsArray)));
        }
        return new PromptSet.Batch(first, size, length, idsArray, mask, rope, rowsArray, references, inputs, mids);
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

    private NDArray gatherRows(NDArray x, NDArray rows) {
        return x.reshape(-1, config.hiddenSize()).get(rows);                            // [R,D] the scored positions
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
                int[] out = forwardFrom(batch, w, entry);
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

    /** Where a trial's forward pass starts: at a cached layer input, at a cached mid-layer state, or from scratch. */
    record Entry(int layer, boolean mlpHalf, boolean fromEmbeddings) {
        static final Entry EMBEDDINGS = new Entry(0, false, true);
    }

    private Entry entry(Trial trial, int stride) {
        int layers = config.numLayers();
        int first = layers;
        boolean mlpOnly = true;
        for (String component : trial.changes().keySet()) {
            if (component.equals("model.embed_tokens")) {
                return Entry.EMBEDDINGS;
            }
            if (component.equals("lm_head")) {
                continue;
            }
            int layer = layerOf(component);
            boolean mlp = component.contains(".mlp.");
            if (layer < first) {
                first = layer;
                mlpOnly = mlp;
            } else if (layer == first) {
                mlpOnly &= mlp;
            }
        }
        if (stride == 0) {
            return Entry.EMBEDDINGS;
        }
        if (stride == 1) {
            return new Entry(first, first < layers && mlpOnly, false);
        }
        // inputs[layers] (the final state) is cached only with stride 1: start below it
        return new Entry(Math.min(first, layers - 1) / stride * stride, false, false);
    }

    private static int layerOf(String component) {
        String rest = component.substring("model.layers.".length());
        return Integer.parseInt(rest.substring(0, rest.indexOf('.')));
    }

    private int[] forwardFrom(PromptSet.Batch batch, Weights w, Entry entry) {
        try (NDScope scope = new NDScope()) {
            return toInts(model.argmaxTokens(w, scoredRows(batch, w, entry)));          // [R]
        }
    }

    /** Runs the layers from the entry point and returns the final hidden states of the scored rows, [R,D]. */
    private NDArray scoredRows(PromptSet.Batch batch, Weights w, Entry entry) {
        NDArray x;
        int from = entry.layer();
        if (entry.fromEmbeddings()) {
            x = model.embed(w, batch.ids());                                            // [B,T,D]
        } else {
            x = entry.mlpHalf() ? batch.mids()[from] : batch.inputs()[from];            // [B,T,D] base states
        }
        for (int l = from; l < config.numLayers(); l++) {
            if (!(l == from && entry.mlpHalf())) {
                x = model.attention(w, l, x, batch.rope(), batch.mask(), null);        // [B,T,D]
            }
            x = model.mlp(w, l, x);                                                     // [B,T,D]
        }
        return gatherRows(x, batch.rows());                                             // [R,D]
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
                    NDList head = model.tokensAndMargins(w, scoredRows(batch, w, entry));         // [R], [R]
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
            return toInts(model.argmaxTokens(w, last));                                 // [B]
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
