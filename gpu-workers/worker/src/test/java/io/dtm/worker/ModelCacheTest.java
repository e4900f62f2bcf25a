package io.dtm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.engine.EngineOptions;
import io.dtm.engine.TestData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8, item 3: models a worker loads stay inside its model root, whatever the spelling, link or index entry, and
 * one directory is loaded once, however it is spelled; the set of loaded models is bounded. Real models on disk.
 */
class ModelCacheTest {

    private static final EngineOptions CPU = new EngineOptions("cpu", "float32", 8, EngineOptions.DEFAULT_CACHE_BUDGET);

    @TempDir
    Path temp;
    private Path root;
    private Path outside;
    private final List<ModelCache.Model> closed = new ArrayList<>();
    private ModelCache cache;

    @BeforeEach
    void models() throws IOException {
        root = Files.createDirectories(temp.resolve("root"));
        outside = Files.createDirectories(temp.resolve("outside"));
        copy(TestData.tinyDir(), root.resolve("tiny"));
        copy(TestData.tinyDir(), outside.resolve("tiny"));
        cache = new ModelCache(root, CPU, 2, closed::add);
    }

    @AfterEach
    void close() {
        cache.close();
    }

    @Test
    void everySpellingOfOneDirectoryIsOneLoadedModel() throws IOException {
        Files.createSymbolicLink(root.resolve("alias"), root.resolve("tiny"));
        ModelCache.Model first = cache.get("tiny");
        for (String spelling : List.of("./tiny", "tiny/", "tiny/.", "alias", "tiny/../tiny", "alias/../tiny",
                root.resolve("tiny").toString(), root + "/./tiny/")) {
            assertSame(first, cache.get(spelling), spelling);
        }
        assertEquals(1, cache.size());
        assertEquals(64, first.digest().length(), "a SHA-256 content digest");
        assertEquals(root.resolve("tiny").toRealPath(), first.dir());
    }

    @Test
    void nothingOutsideTheRootIsLoaded() throws IOException {
        // a parent reference, an absolute path, a link to a directory outside
        assertRefused("../outside/tiny", "outside the model root");
        assertRefused(outside.resolve("tiny").toString(), "outside the model root");
        Files.createSymbolicLink(root.resolve("link-out"), outside.resolve("tiny"));
        assertRefused("link-out", "outside the model root");

        // a model inside whose config.json links to a file outside
        Path linked = copy(TestData.tinyDir(), root.resolve("linked-config"));
        Files.delete(linked.resolve("config.json"));
        Path secret = Files.writeString(outside.resolve("secret.json"), "{\"password\": \"hunter2\"}");
        Files.createSymbolicLink(linked.resolve("config.json"), secret);
        String reason = assertRefused("linked-config", "outside the model root");
        assertFalse(reason.contains("hunter2"), reason);

        // an index naming a shard that climbs out of the model directory
        Path indexed = copy(TestData.tinyDir(), root.resolve("indexed"));
        Files.delete(indexed.resolve("model.safetensors"));
        Files.writeString(indexed.resolve("model.safetensors.index.json"),
                "{\"weight_map\": {\"model.norm.weight\": \"../../../../etc/passwd\"}}");
        assertRefused("indexed", "plain file names");

        // a name that exists relative to the working directory but not in the root: no fallback to the cwd
        Path cwdModel = copy(TestData.tinyDir(), Path.of("target", "cwd-model-" + System.nanoTime()));
        try {
            assertRefused(cwdModel.toString(), "does not exist");
        } finally {
            deleteTree(cwdModel);
        }
        assertEquals(0, cache.size());
    }

    @Test
    void invalidJsonIsReportedWithoutItsText() throws IOException {
        Path broken = copy(TestData.tinyDir(), root.resolve("broken"));
        Files.delete(broken.resolve("config.json"));
        Files.writeString(broken.resolve("config.json"), "{\"hidden_size\": tok3n-from-a-secret-file}");
        String reason = assertRefused("broken", "not valid JSON");
        assertFalse(reason.contains("tok3n"), reason);
    }

    @Test
    void theLeastRecentlyUsedModelIsUnloadedBeyondTheBound() throws IOException {
        copy(TestData.tinyDir(), root.resolve("second"));
        copy(TestData.tinyDir(), root.resolve("third"));
        ModelCache.Model tiny = cache.get("tiny");
        ModelCache.Model second = cache.get("second");
        assertSame(tiny, cache.get("tiny")); // second is now the least recently used
        cache.get("third");
        assertEquals(2, cache.size());
        assertEquals(List.of(second), closed, "the evicted model was closed");
        assertEquals(tiny.digest(), second.digest(), "copies share their content digest");
    }

    @Test
    void aModelChangedInPlaceIsReloadedUnderItsNewDigest() throws IOException {
        ModelCache.Model before = cache.get("tiny");
        Path config = root.resolve("tiny/config.json");
        String text = Files.readString(config).replace("\"initializer_range\": 0.2", "\"initializer_range\": 0.3");
        Files.writeString(config, text);
        Files.setLastModifiedTime(config, FileTime.fromMillis(System.currentTimeMillis() + 10_000));
        ModelCache.Model after = cache.get("tiny");
        assertNotEquals(before.digest(), after.digest());
        assertNotEquals(before.id(), after.id());
        assertEquals(List.of(before), closed, "the stale copy was closed");

        // only the time changed: digested again, same content, same model
        Files.setLastModifiedTime(config, FileTime.fromMillis(System.currentTimeMillis() + 20_000));
        assertSame(after, cache.get("tiny"));
    }

    private String assertRefused(String name, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> cache.get(name), name);
        assertTrue(e.getMessage().contains(expected), name + ": " + e.getMessage());
        return e.getMessage();
    }

    private static Path copy(Path source, Path target) throws IOException {
        Files.createDirectories(target);
        try (Stream<Path> files = Files.list(source)) {
            for (Path f : files.toList()) {
                Path to = target.resolve(f.getFileName().toString());
                Files.copy(f, to);
                to.toFile().setWritable(true);
            }
        }
        return target;
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
