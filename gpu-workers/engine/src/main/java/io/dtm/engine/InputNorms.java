package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Wanda's input norms (dtm-spec "Compressions"): for each linear input site of each layer, ‖X_c‖₂ of every input feature
 * c over all P + N teacher-forced positions of every prompt of a set (padding excluded), as float32 sums of squares
 * added batch by batch, owned by a manager of their own.
 */
final class InputNorms implements AutoCloseable {

    /** A layer's input site: what the norms of a component are keyed by. */
    record Key(int layer, LlamaModel.Site site) {
        static Key of(String component) {
            String local = component.substring(component.indexOf('.', "model.layers.".length()) + 1);
            return new Key(ModelWeights.layerOf(component), LlamaModel.Site.of(local));
        }
    }

    private final NDManager owner;
    private final Map<Key, NDArray> squares = new HashMap<>();

    InputNorms(NDManager parent) {
        this.owner = parent.newSubManager();
    }

    /**
     * A tap adding a batch's linear inputs at the sites {@code wanted} accepts, each position weighted by
     * {@code valid} [B,T,1] (1 for x ++ y, 0 for padding), and passing every layer on to {@code inner}.
     */
    LlamaModel.Tap tap(NDArray valid, Predicate<Key> wanted, LlamaModel.Tap inner) {
        NDArray valid64 = valid.toType(DataType.FLOAT64, false);                                 // [B,T,1]
        return new LlamaModel.Tap() {
            @Override
            public void layer(int l, NDArray input, LlamaModel.Attention attention, LlamaModel.Mlp mlp) {
                inner.layer(l, input, attention, mlp);
            }

            @Override
            public void linearInput(int l, LlamaModel.Site site, NDArray x) {
                Key key = new Key(l, site);
                if (wanted.test(key)) {
                    // the float64 copies of x are [B,T,in] each: freed here, not with the pass's scope, or a pass over
                    // a 7B model's layers would hold ~100 GB of them at once
                    try (NDScope scope = new NDScope()) {
                        NDArray x64 = x.toType(DataType.FLOAT64, false);                         // [B,T,in]
                        add(key, x64.muli(x64).muli(valid64)                                     // [B,T,in] x²
                                .sum(new int[] {0, 1}).toType(DataType.FLOAT32, false));         // [in]
                    }
                }
            }
        };
    }

    private void add(Key key, NDArray batchSquares) {
        NDArray sum = squares.get(key);
        NDArray total = sum == null ? batchSquares : sum.add(batchSquares);
        NDScope.unregister(total);
        total.attach(owner);
        squares.put(key, total);
        if (sum != null) {
            sum.close();
        }
    }

    /** Whether the norms of {@code key} were collected. */
    boolean has(Key key) {
        return squares.containsKey(key);
    }

    /** ‖X_c‖₂ [in] of the site, in float32 (made in the caller's scope). */
    NDArray norms(Key key) {
        NDArray sum = squares.get(key);
        if (sum == null) {
            throw new IllegalStateException("no input norms were collected for layer " + key.layer() + " " + key.site());
        }
        return sum.sqrt();
    }

    @Override
    public void close() {
        owner.close();
    }
}
