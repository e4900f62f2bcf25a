package io.dtm.worker;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.EngineOptions;
import io.dtm.engine.ModelFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The models a worker keeps loaded: at most {@code capacity}, the least recently used closed first, each under its
 * real directory and known by its content digest.
 *
 * <p>Trials name a model as text. With a root, the name resolves inside it (an absolute name must already point
 * inside) and every file, links followed, index shard names included, must stay inside ({@link ModelFiles}); no other
 * directory is tried. Without a root the name is a path as given. Every spelling of one directory ({@code m},
 * {@code ./m}, {@code m/}, a link to it) finds the one loaded copy. When a model's files change in place (another size,
 * time or inode), its content is digested again and, if it changed, the model is reloaded: it is a different model,
 * and nothing computed with the old one may be reused.
 */
final class ModelCache implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ModelCache.class);

    /**
     * A loaded model.
     *
     * @param id     real directory and content digest: what prompt sets prepared with this engine are filed under
     * @param digest SHA-256 of config, tokenizer and weights: the identity baselines carry
     */
    record Model(String id, Path dir, String digest, DivergenceEngine engine) {}

    /** What a model directory's files looked like when it was digested: name, size, time and inode of each. */
    private record Loaded(Model model, List<String> stamp) {}

    private final Path root;
    private final EngineOptions options;
    private final int capacity;
    private final Consumer<Model> beforeClose;
    private final LinkedHashMap<Path, Loaded> models = new LinkedHashMap<>(4, 0.75f, true);

    /**
     * @param root        confines every model to this directory; null: any path the worker can read
     * @param beforeClose drops what depends on a model (its prepared prompt sets) before its engine closes
     */
    ModelCache(Path root, EngineOptions options, int capacity, Consumer<Model> beforeClose) {
        if (capacity < 1) {
            throw new IllegalArgumentException("at least one model must stay loaded, got " + capacity);
        }
        this.root = root;
        this.options = options;
        this.capacity = capacity;
        this.beforeClose = beforeClose;
    }

    /**
     * The model {@code name} names, loaded if need be.
     *
     * @throws IllegalArgumentException why it cannot be used, naming the file and the rule, never file contents
     */
    Model get(String name) {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("the trial names no model");
        }
        Path dir = root == null ? Path.of(name) : root.resolve(name);
        try {
            // every trial shard asks: a loaded model whose files are unchanged costs a listing, not a re-read of its
            // checkpoint index (~1 ms for a 200-tensor index, a few % of a 1B model's shard on a GPU)
            Path real = ModelFiles.realDir(dir, root);
            List<String> stamp = stamp(real);
            Loaded known = models.get(real);
            if (known != null && known.stamp().equals(stamp)) {
                return known.model();
            }
            ModelFiles files = ModelFiles.resolve(real, root);
            String digest = files.digest();
            if (known != null && known.model().digest().equals(digest)) {
                models.put(real, new Loaded(known.model(), stamp)); // touched, not changed
                return known.model();
            }
            if (known != null) {
                log.info("model {} changed in place (digest {} -> {}); reloading", real, known.model().digest(), digest);
                close(models.remove(real).model());
            }
            DivergenceEngine engine = DivergenceEngine.load(real, options, root);
            Model model = new Model(real + "#" + digest, real, digest, engine);
            log.info("loaded model {} (digest {}) on {}", real, digest, engine.device());
            models.put(real, new Loaded(model, stamp));
            evictBeyondCapacity();
            return model;
        } catch (IOException | RuntimeException | LinkageError e) {
            throw new IllegalArgumentException("cannot load model '" + name + "': " + reason(e), e);
        }
    }

    int size() {
        return models.size();
    }

    private void evictBeyondCapacity() {
        Iterator<Map.Entry<Path, Loaded>> eldest = models.entrySet().iterator();
        while (models.size() > capacity) {
            Model evicted = eldest.next().getValue().model();
            eldest.remove();
            log.info("unloading model {} (least recently used of {})", evicted.dir(), capacity + 1);
            close(evicted);
        }
    }

    private void close(Model model) {
        beforeClose.accept(model);
        model.engine().close();
    }

    /** Size, modification time and inode of every regular file in the directory (links followed), by name. */
    private static List<String> stamp(Path dir) throws IOException {
        List<String> stamp = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.sorted().toList()) {
                if (Files.isRegularFile(f)) {
                    BasicFileAttributes a = Files.readAttributes(f, BasicFileAttributes.class);
                    stamp.add(f.getFileName() + " " + a.size() + " " + a.lastModifiedTime().toMillis() + " "
                            + a.fileKey());
                }
            }
        }
        return stamp;
    }

    /**
     * What went wrong, for a dead letter. A JSON parser's message quotes the text it choked on, and a model file may be
     * a link to anything: only the position is kept.
     */
    static String reason(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof JsonProcessingException json) {
                JsonLocation at = json.getLocation();
                return "a model file is not valid JSON" + (at == null ? ""
                        : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")");
            }
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    @Override
    public void close() {
        models.values().forEach(l -> close(l.model()));
        models.clear();
    }
}
