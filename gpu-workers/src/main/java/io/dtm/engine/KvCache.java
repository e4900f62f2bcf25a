package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;

/**
 * Keys and values of every layer for incremental decoding. Its arrays outlive the per-step {@link NDScope} they were
 * made in, so they are unregistered from it and closed here when replaced or when the cache closes.
 */
final class KvCache implements AutoCloseable {

    private final NDArray[] keys;
    private final NDArray[] values;

    KvCache(int layers) {
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
    }

    /** past [B,K,S',E] ++ new [B,K,T,E] → [B,K,S'+T,E]. */
    NDArray appendKeys(int layer, NDArray k) {
        return append(keys, layer, k);
    }

    NDArray appendValues(int layer, NDArray v) {
        return append(values, layer, v);
    }

    private static NDArray append(NDArray[] store, int layer, NDArray fresh) {
        NDArray past = store[layer];
        NDArray all = past == null ? fresh : past.concat(fresh, 2);
        NDScope.unregister(all);
        store[layer] = all;
        if (past != null) {
            past.close();
        }
        return all;
    }

    @Override
    public void close() {
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] != null) {
                keys[l].close();
                values[l].close();
                keys[l] = null;
                values[l] = null;
            }
        }
    }
}
