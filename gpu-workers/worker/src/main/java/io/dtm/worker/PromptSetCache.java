package io.dtm.worker;

import io.dtm.engine.PromptSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The prompt sets a worker keeps prepared, least recently used first out: at most {@code maxSets} of them, and no more
 * than {@code maxBytes} of cache together (the one just added always stays, however large). An evicted set is closed,
 * which frees its native memory.
 */
final class PromptSetCache implements AutoCloseable {

    private final int maxSets;
    private final long maxBytes;
    private final LinkedHashMap<String, PromptSet> sets = new LinkedHashMap<>(8, 0.75f, true);

    PromptSetCache(int maxSets, long maxBytes) {
        this.maxSets = maxSets;
        this.maxBytes = maxBytes;
    }

    /** The set under {@code key}, now the most recently used, or null. */
    PromptSet get(String key) {
        return sets.get(key);
    }

    void put(String key, PromptSet set) {
        PromptSet previous = sets.put(key, set);
        if (previous != null && previous != set) {
            previous.close();
        }
        Iterator<Map.Entry<String, PromptSet>> eldest = sets.entrySet().iterator();
        while (sets.size() > 1 && (sets.size() > maxSets || bytes() > maxBytes)) {
            eldest.next().getValue().close();
            eldest.remove();
        }
    }

    /** Closes and drops every set whose key starts with {@code prefix}: those of a model being unloaded. */
    void evict(String prefix) {
        Iterator<Map.Entry<String, PromptSet>> it = sets.entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<String, PromptSet> e = it.next();
            if (e.getKey().startsWith(prefix)) {
                e.getValue().close();
                it.remove();
            }
        }
    }

    int size() {
        return sets.size();
    }

    long bytes() {
        return sets.values().stream().mapToLong(PromptSet::cacheBytes).sum();
    }

    @Override
    public void close() {
        sets.values().forEach(PromptSet::close);
        sets.clear();
    }
}
