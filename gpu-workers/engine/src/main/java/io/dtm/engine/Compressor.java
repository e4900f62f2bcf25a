package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.dtm.schemas.CompressionSpec;
import java.util.List;

/**
 * The compressions of dtm-spec ("Compressions") as tensor ops on the weight's own device, CPU or GPU: a trial's weight
 * never crosses to the host, and nothing here waits for the device. Every kind computes in float32 on the
 * compute-dtype weight (widening is exact) and rounds the result back once, so on float32 weights it is bit-identical
 * to the spec (tested against a plain-Java reference on matrices full of ties).
 *
 * <p>A new kind is one more implementation and one more case in {@link #of}. A chain applies its steps in order.
 */
sealed interface Compressor {

    /** The compressor a validated spec names (a chain of its steps). */
    static Compressor of(CompressionSpec spec, Scalars scalars) {
        List<Compressor> steps = spec.steps().stream().map(step -> of(step, scalars)).toList();
        return steps.size() == 1 ? steps.get(0) : new Chain(steps);
    }

    private static Compressor of(CompressionSpec.Step step, Scalars scalars) {
        if (step instanceof CompressionSpec.Prune p) {
            return new MagnitudePrune(p.sparsity(), scalars);
        } else if (step instanceof CompressionSpec.Int8Rowwise) {
            return new Symmetric(127, 0, scalars);
        } else if (step instanceof CompressionSpec.NM nm) {
            return new NmSparsity(nm.n(), nm.m(), scalars);
        } else if (step instanceof CompressionSpec.Int4Group g) {
            return new Symmetric(7, g.group(), scalars);
        } else if (step instanceof CompressionSpec.Wanda wanda) {
            return new Wanda(wanda.sparsity(), scalars);
        }
        throw new IllegalArgumentException("no compressor for " + step.text());
    }

    /**
     * W [out,in] → W' of the same shape, dtype and device. {@code inputNorms} [in] (float32) are ‖X_c‖₂ of the matrix's
     * input features, for the kinds that weigh by activations (else null). Runs inside the caller's NDScope: the
     * temporaries go with it, and the caller keeps the result.
     */
    NDArray apply(NDArray w, NDArray inputNorms);

    /** {@link #apply(NDArray, NDArray)} for kinds that need no activations. */
    default NDArray apply(NDArray w) {
        return apply(w, null);
    }

    /**
     * Of every row of {@code scores} [R,C] (float32), the {@code k} smallest, ties broken by ascending column: a boolean
     * [R,C] mask. Without sorting (score, column) pairs: t_r is the row's k-th smallest score; every score below it
     * goes, and of those equal to it (float16 and bfloat16 weights have many) the first {@code k − #{< t_r}} by a
     * running count of the equality mask. Only the scores are sorted.
     */
    static NDArray smallest(NDArray scores, long k, Scalars scalars) {
        if (k >= scores.getShape().get(1)) {
            return scores.onesLike().toType(DataType.BOOLEAN, false);                             // [R,C] all go
        }
        NDArray t = scores.sort(1).get(":, " + (k - 1) + ":" + k);                                // [R,1] k-th smallest
        NDArray below = scores.lt(t);                                                             // [R,C] all of these go
        NDArray ties = scores.eq(t);                                                              // [R,C] the first `need`
        NDArray need = below.sum(new int[] {1}, true).neg().addi(scalars.i64(k));                 // [R,1] k − #{< t_r}
        NDArray firstTies = ties.logicalAnd(ties.toType(DataType.INT64, false).cumSum(1).lte(need)); // [R,C]
        return below.logicalOr(firstTies);                                                        // [R,C]
    }

    /** W with the masked entries set to +0 (the spec's zero, whatever the entry's sign). */
    static NDArray zeroed(NDArray w, NDArray mask) {
        return NDArrays.where(mask.reshape(w.getShape()), w.zerosLike(), w);
    }

    /**
     * {@code prune(s)}: the {@code k = round(s · numel)} entries of smallest |W| zeroed, ties by ascending flat index
     * ({@code round} half to even, as Python's).
     */
    record MagnitudePrune(double sparsity, Scalars scalars) implements Compressor {
        @Override
        public NDArray apply(NDArray w, NDArray inputNorms) {
            long n = w.size();
            long k = (long) Math.rint(sparsity * n);
            if (k <= 0) {
                return w.duplicate();
            }
            NDArray magnitude = w.toType(DataType.FLOAT32, false).abs().reshape(1, n);          // [1,n] |W| row-major
            return zeroed(w, smallest(magnitude, Math.min(k, n), scalars));                      // [out,in] W'
        }
    }

    /**
     * {@code nm:N:M}: in each row, in each group of M consecutive input columns, the N entries of smallest |W| zeroed,
     * ties by ascending column. The input dimension must be a multiple of M.
     */
    record NmSparsity(int n, int m, Scalars scalars) implements Compressor {
        @Override
        public NDArray apply(NDArray w, NDArray inputNorms) {
            long in = w.getShape().get(1);
            if (in % m != 0) {
                throw new IllegalArgumentException("nm:" + n + ":" + m + " needs the input dimension (" + in
                        + ") to be a multiple of " + m);
            }
            if (n == 0) {
                return w.duplicate();
            }
            NDArray groups = w.toType(DataType.FLOAT32, false).abs().reshape(-1, m);             // [out·in/M, M] |W|
            return zeroed(w, smallest(groups, n, scalars));                                      // [out,in] W'
        }
    }

    /**
     * Symmetric absmax quantization, dequantized: {@code int8_rowwise} (levels 127, one scale per output row) and
     * {@code int4g:G} (levels 7, one scale per group of G input columns). scale = max|W| over the group / levels (a
     * zero group keeps scale 1), W' = clamp(rint(W / scale), −levels, levels) · scale, float32, rint half to even.
     */
    record Symmetric(int levels, int group, Scalars scalars) implements Compressor {
        @Override
        public NDArray apply(NDArray w, NDArray inputNorms) {
            Shape shape = w.getShape();
            long in = shape.get(1);
            long g = group == 0 ? in : group;
            if (in % g != 0) {
                throw new IllegalArgumentException("int4g:" + group + " needs the input dimension (" + in
                        + ") to be a multiple of " + group);
            }
            NDArray w32 = w.toType(DataType.FLOAT32, false).reshape(-1, g);                      // [groups, G]
            NDArray scale = w32.abs().max(new int[] {1}, true).divi(scalars.f32(levels));        // [groups,1] max|W|/L
            scale = scale.addi(scale.eq(scalars.f32(0f)).toType(DataType.FLOAT32, false));       // zero group → 1
            NDArray q = w32.div(scale).round();                                                  // [groups,G] rint
            q = NDArrays.minimum(NDArrays.maximum(q, scalars.f32(-levels)), scalars.f32(levels)); // clamp
            return q.muli(scale).reshape(shape).toType(w.getDataType(), false);                  // [out,in] W'
        }
    }

    /**
     * {@code wanda:s}: score S_rc = |W_rc| · ‖X_c‖₂ in float32; in each row the {@code round(s · in)} entries of smallest
     * score zeroed, ties by ascending column.
     */
    record Wanda(double sparsity, Scalars scalars) implements Compressor {
        @Override
        public NDArray apply(NDArray w, NDArray inputNorms) {
            if (inputNorms == null) {
                throw new IllegalArgumentException("wanda needs the input norms of the matrix over a prompt set");
            }
            long k = (long) Math.rint(sparsity * w.getShape().get(1));
            if (k <= 0) {
                return w.duplicate();
            }
            NDArray scores = w.toType(DataType.FLOAT32, false).abs().mul(inputNorms.expandDims(0)); // [out,in] S
            return zeroed(w, smallest(scores, k, scalars));                                         // [out,in] W'
        }
    }

    /** {@code A+B}: A, then B on A's result (zeros stay zero: rint(0) = 0). */
    record Chain(List<Compressor> steps) implements Compressor {
        @Override
        public NDArray apply(NDArray w, NDArray inputNorms) {
            NDArray out = w;
            for (Compressor step : steps) {
                out = step.apply(out, inputNorms);
            }
            return out;
        }
    }
}
