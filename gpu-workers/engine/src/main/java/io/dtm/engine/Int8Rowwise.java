package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.types.DataType;

/**
 * {@code int8_rowwise}: symmetric absmax int8 per output row, dequantized. {@code scale_r = max_c |W_rc| / 127} (a zero
 * row keeps scale 1), {@code W'_rc = clamp(rint(W_rc / scale_r), -127, 127) · scale_r}, all in float32 with {@code rint}
 * half to even (torch's round).
 */
record Int8Rowwise(Scalars scalars) implements Compressor {

    @Override
    public NDArray apply(NDArray w) {
        NDArray w32 = w.toType(DataType.FLOAT32, false);                                         // [O,I]
        NDArray scale = w32.abs().max(new int[] {1}, true).divi(scalars.f32(127f));             // [O,1] max|W_r·| / 127
        scale = scale.addi(scale.eq(scalars.f32(0f)).toType(DataType.FLOAT32, false));          // [O,1] zero row → 1
        NDArray q = w32.div(scale).round();                                                      // [O,I] rint
        q = NDArrays.minimum(NDArrays.maximum(q, scalars.f32(-127f)), scalars.f32(127f));        // [O,I] clamp
        return q.muli(scale).toType(w.getDataType(), false);                                    // [O,I] W'
    }
}
