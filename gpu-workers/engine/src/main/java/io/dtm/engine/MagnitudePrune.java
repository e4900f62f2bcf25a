package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.types.DataType;

/**
 * {@code prune(s)}: zero the {@code k = round(s · numel)} entries of smallest |W|, ties broken by ascending flat
 * (row-major) index ({@code round} half to even, as Python's).
 *
 * <p>Without a sort by (|W|, index): let t be the k-th smallest |W|. Every entry below t goes; of the entries equal to
 * t (float16 and bfloat16 weights have many), the first {@code need = k − #{|W| < t}} in flat order go, found by a
 * running count of the equality mask. Only t needs the values sorted.
 */
record MagnitudePrune(double sparsity, Scalars scalars) implements Compressor {

    @Override
    public NDArray apply(NDArray w) {
        long n = w.size();
        long k = (long) Math.rint(sparsity * n);
        if (k <= 0) {
            return w.duplicate();
        }
        if (k >= n) {
            return w.zerosLike();
        }
        NDArray magnitude = w.toType(DataType.FLOAT32, false).abs().reshape(n);                  // [n] |W| row-major
        NDArray t = magnitude.sort(0).get(k - 1);                                                // []  k-th smallest
        NDArray below = magnitude.lt(t);                                                         // [n] all of these go
        NDArray ties = magnitude.eq(t);                                                          // [n] the first `need` go
        NDArray need = below.sum().neg().addi(scalars.i64(k));                                   // []  k − #{|W| < t}
        NDArray firstTies = ties.logicalAnd(ties.toType(DataType.INT64, false).cumSum(0).lte(need)); // [n]
        NDArray zeroed = below.logicalOr(firstTies).reshape(w.getShape());                       // [out,in]
        return NDArrays.where(zeroed, w.zerosLike(), w);                                         // [out,in] W'
    }
}
