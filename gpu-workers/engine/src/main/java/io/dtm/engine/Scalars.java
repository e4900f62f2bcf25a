package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Zero-dimensional constants on the engine's device, made once. DJL turns {@code x.add(1)} into a fresh tensor copied
 * from the host per call, and on a GPU that copy synchronises the stream: every such op would stall the device until
 * all queued work finished. Ops with these constants queue like any other.
 *
 * <p>The exception is the RMSNorm exponent: {@link #cpuMinusHalf} stays on the CPU, because ATen's {@code pow} turns a
 * CPU scalar exponent of -0.5 into {@code rsqrt}, as transformers computes RMSNorm (a CPU scalar needs no copy).
 */
final class Scalars implements AutoCloseable {

    private final NDManager device;
    private final NDManager cpu;
    private final Map<String, NDArray> made = new ConcurrentHashMap<>();
    final NDArray cpuMinusHalf;

    Scalars(NDManager parent) {
        this.device = parent.newSubManager();
        this.cpu = NDManager.newBaseManager(ai.djl.Device.cpu(), parent.getEngine().getEngineName());
        this.cpuMinusHalf = kept(cpu.create(-0.5f));
    }

    /** The float32 constant {@code v}. */
    NDArray f32(float v) {
        return made.computeIfAbsent("f" + Float.floatToRawIntBits(v), k -> kept(device.create(v)));
    }

    /** The int64 constant {@code v}. */
    NDArray i64(long v) {
        return made.computeIfAbsent("l" + v, k -> kept(device.create(v)));
    }

    /** The constant {@code v} in {@code dtype} (float32, float16 or int64). */
    NDArray of(double v, DataType dtype) {
        return switch (dtype) {
            case FLOAT32 -> f32((float) v);
            case INT64 -> i64((long) v);
            default -> made.computeIfAbsent(dtype + ":" + Double.doubleToRawLongBits(v),
                    k -> kept(device.create((float) v).toType(dtype, true)));
        };
    }

    /** A constant outlives any scope it is first asked for in; its manager frees it. */
    private static NDArray kept(NDArray a) {
        ai.djl.ndarray.NDScope.unregister(a);
        return a;
    }

    @Override
    public void close() {
        device.close();
        cpu.close();
    }
}
