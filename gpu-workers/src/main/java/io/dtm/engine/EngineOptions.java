package io.dtm.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;
import java.util.Locale;

/**
 * How the engine runs: device ({@code cpu}, {@code gpu} or {@code auto}), compute dtype ({@code float32}, or
 * {@code float16} on a GPU: DJL crashes on bfloat16), prompts per forward batch, and the memory the layer cache may use.
 */
public record EngineOptions(String device, String dtype, int batchSize, long cacheBudgetBytes) {

    public static final long DEFAULT_CACHE_BUDGET = 2L << 30;

    public EngineOptions {
        device = device.toLowerCase(Locale.ROOT);
        dtype = dtype.toLowerCase(Locale.ROOT);
        if (!device.equals("cpu") && !device.equals("gpu") && !device.equals("auto")) {
            throw new IllegalArgumentException("device must be cpu, gpu or auto, got '" + device + "'");
        }
        if (!dtype.equals("float32") && !dtype.equals("float16")) {
            throw new IllegalArgumentException("dtype must be float32 or float16 (bfloat16 crashes DJL), got '" + dtype + "'");
        }
        if (dtype.equals("float16") && device.equals("cpu")) {
            throw new IllegalArgumentException("float16 compute is for GPUs; on the CPU use float32");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be at least 1, got " + batchSize);
        }
        if (cacheBudgetBytes < 0) {
            throw new IllegalArgumentException("cache budget must not be negative");
        }
    }

    public static EngineOptions defaults() {
        return new EngineOptions("auto", "float32", 64, DEFAULT_CACHE_BUDGET);
    }

    public EngineOptions withBatchSize(int size) {
        return new EngineOptions(device, dtype, size, cacheBudgetBytes);
    }

    public EngineOptions withCacheBudget(long bytes) {
        return new EngineOptions(device, dtype, batchSize, bytes);
    }

    /** The device these options select on this machine; fails if a GPU is asked for and PyTorch sees none. */
    public Device resolveDevice() {
        boolean hasGpu = Engine.getEngine("PyTorch").getGpuCount() > 0;
        if (device.equals("gpu") && !hasGpu) {
            throw new IllegalStateException("device gpu requested but PyTorch sees no GPU");
        }
        return (device.equals("gpu") || (device.equals("auto") && hasGpu)) ? Device.gpu() : Device.cpu();
    }

    DataType resolveDataType(Device d) {
        if (dtype.equals("float16") && !d.isGpu()) {
            throw new IllegalArgumentException("float16 compute needs a GPU; this run is on " + d);
        }
        return dtype.equals("float16") ? DataType.FLOAT16 : DataType.FLOAT32;
    }
}
