package io.dtm.engine;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How the engine runs: device ({@code cpu}, {@code gpu} (the first GPU), {@code gpu:I} or {@code auto}), compute dtype
 * ({@code float32}, or {@code float16} on a GPU: DJL crashes on bfloat16), prompts per forward batch, and the memory
 * the layer cache may use.
 */
public record EngineOptions(String device, String dtype, int batchSize, long cacheBudgetBytes) {

    /** The cache budget on a CPU when none is given. */
    public static final long DEFAULT_CACHE_BUDGET = 2L << 30;

    /** The share of a GPU's memory the cache may use when no budget is given: the rest holds weights and a trial. */
    private static final double GPU_CACHE_SHARE = 0.25;

    private static final Pattern GPU_INDEX = Pattern.compile("gpu:(\\d{1,4})");

    public EngineOptions {
        device = device.toLowerCase(Locale.ROOT);
        dtype = dtype.toLowerCase(Locale.ROOT);
        if (!device.equals("cpu") && !device.equals("gpu") && !device.equals("auto")
                && !GPU_INDEX.matcher(device).matches()) {
            throw new IllegalArgumentException("device must be cpu, gpu, gpu:I or auto, got '" + device + "'");
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

    /**
     * The device these options select on this machine; fails if a GPU is asked for and PyTorch sees none (or fewer
     * than the index asked for).
     */
    public Device resolveDevice() {
        int gpus = EngineRuntime.gpuCount();
        if (device.equals("cpu") || (device.equals("auto") && gpus == 0)) {
            return Device.cpu();
        }
        int index = 0;
        Matcher m = GPU_INDEX.matcher(device);
        if (m.matches()) {
            index = Integer.parseInt(m.group(1));
        }
        if (gpus == 0) {
            throw new IllegalStateException("device " + device + " requested but PyTorch sees no GPU");
        }
        if (index >= gpus) {
            throw new IllegalStateException("device " + device + " requested but PyTorch sees only " + gpus
                    + " GPU(s) (gpu:0 to gpu:" + (gpus - 1) + ")");
        }
        return Device.gpu(index);
    }

    /**
     * The cache budget for {@code device} when the user gives none: {@link #DEFAULT_CACHE_BUDGET} on a CPU, a quarter of
     * the GPU's memory on a GPU (an 8B model in float16 takes 16 GB of an 80-141 GB card; its cache for 64 prompts ×
     * 64 tokens with all intermediates, about 20 GB).
     */
    public static long defaultCacheBudget(String device) {
        Device d = new EngineOptions(device, "float32", 1, 0).resolveDevice();
        if (!d.isGpu()) {
            return DEFAULT_CACHE_BUDGET;
        }
        try {
            long total = ai.djl.util.cuda.CudaUtils.getGpuMemory(d).getMax();
            return total > 0 ? (long) (total * GPU_CACHE_SHARE) : 4 * DEFAULT_CACHE_BUDGET;
        } catch (RuntimeException | LinkageError e) {
            return 4 * DEFAULT_CACHE_BUDGET;
        }
    }

    DataType resolveDataType(Device d) {
        if (dtype.equals("float16") && !d.isGpu()) {
            throw new IllegalArgumentException("float16 compute needs a GPU; this run is on " + d);
        }
        return dtype.equals("float16") ? DataType.FLOAT16 : DataType.FLOAT32;
    }
}
