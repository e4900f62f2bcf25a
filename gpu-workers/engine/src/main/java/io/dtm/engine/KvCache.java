package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;

/**
 * Keys and values of every layer for incremental decoding, owned by a manager of its own: they outlive the per-step
 * {@link NDScope} they are made in, and closing the cache frees them all.
 */
final class KvCache implements AutoCloseable {

    private final NDManager owner;
    private final NDArray[] keys;
    private final NDArray[] values;

    KvCache(NDManager parent, int layers) {
        this.owner = parent.newSubManager();
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

    private NDArray append(NDArray[] store, int layer, NDArray fresh) {
        NDArray past = store[layer];
        NDArray all = past == null ? fresh : past.concat(fresh, 2);
        NDScope.unregister(all);
        all.attach(owner);
        store[layer] = all;
        if (past != null) {
            past.close(); // a step's keys are only ever read through the longer array that replaces them
        }
        return all;
    }

    @Override
    public void close() {
        owner.close();
    }
}
