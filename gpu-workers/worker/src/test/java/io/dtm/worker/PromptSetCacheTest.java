package io.dtm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.EngineOptions;
import io.dtm.engine.PromptSet;
import io.dtm.engine.TestData;
import io.dtm.engine.Trial;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A worker's prepared prompt sets: bounded in number and in bytes together, least recently used out, closed on the way. */
class PromptSetCacheTest {

    static DivergenceEngine engine;

    @BeforeAll
    static void load() throws IOException {
        engine = DivergenceEngine.load(TestData.tinyDir(), new EngineOptions("cpu", "float32", 4, EngineOptions.DEFAULT_CACHE_BUDGET));
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static PromptSet prepare(String prompt) {
        return engine.prepare(List.of(prompt, prompt + " again"), 4, DivergenceEngine.Progress.NONE);
    }

    /** A closed set has freed its arrays: scoring on it fails. */
    private static boolean closed(PromptSet set) {
        try {
            engine.score(set, Trial.none());
            return false;
        } catch (RuntimeException e) {
            return true;
        }
    }

    @Test
    void evictsTheLeastRecentlyUsedBeyondTheCount() {
        try (PromptSetCache cache = new PromptSetCache(2, Long.MAX_VALUE)) {
            PromptSet a = prepare("The river");
            PromptSet b = prepare("A house");
            PromptSet c = prepare("Old letters");
            cache.put("a", a);
            cache.put("b", b);
            assertSame(a, cache.get("a")); // a is now the most recent
            cache.put("c", c);
            assertEquals(2, cache.size());
            assertNull(cache.get("b"));
            assertTrue(closed(b), "an evicted set is closed");
            assertSame(a, cache.get("a"));
            assertSame(c, cache.get("c"));
            assertTrue(!closed(a) && !closed(c));
        }
    }

    @Test
    void keepsTheSetsTogetherUnderTheByteBudgetButAlwaysTheNewest() {
        PromptSet a = prepare("The river");
        long one = a.cacheBytes();
        assertTrue(one > 0);
        try (PromptSetCache cache = new PromptSetCache(8, 2 * one + one / 2)) {
            cache.put("a", a);
            cache.put("b", prepare("A house"));
            assertEquals(2, cache.size());
            cache.put("c", prepare("Old letter"));
            assertEquals(2, cache.size(), "three sets would exceed the budget");
            assertNull(cache.get("a"));
            assertTrue(closed(a));
            assertTrue(cache.bytes() <= 2 * one + one / 2);
        }
        try (PromptSetCache tiny = new PromptSetCache(8, 1)) {
            PromptSet big = prepare("Whatever the budget");
            tiny.put("x", big);
            assertSame(big, tiny.get("x"), "the set just added stays, however large");
        }
    }

    @Test
    void workerConfigRejectsAnEmptyCache() {
        assertThrows(IllegalArgumentException.class, () -> new TrialWorker.Config(
                java.util.Map.of("bootstrap.servers", "localhost:9092"), null, "g", "w", null,
                EngineOptions.defaults(), java.time.Duration.ofMinutes(1), 0));
    }
}
