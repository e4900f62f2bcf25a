package io.dtm.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The process-wide settings DJL needs before it first loads, in one place: every entry point that may touch the engine
 * calls {@link #init()} first.
 *
 * <ul>
 *   <li>{@code ai.djl.offline}: without it DJL probes 169.254.169.254 at start-up.
 *   <li>A quiet CPU host: DJL asks the CUDA runtime for a GPU count even where no NVIDIA driver is installed, and logs
 *       "CUDA driver version is insufficient" twice, which users read as a fault. Without a driver there is no GPU to
 *       find, so the probe's logger is silenced and the answer is 0 without asking.
 * </ul>
 */
public final class EngineRuntime {

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(EngineRuntime.class);

    /** Files an NVIDIA driver (or WSL's GPU bridge) creates; none of them means no CUDA device can exist. */
    private static final List<Path> DRIVER_FILES = List.of(Path.of("/proc/driver/nvidia/version"),
            Path.of("/dev/nvidiactl"), Path.of("/dev/dxg"));

    private static final boolean DRIVER = DRIVER_FILES.stream().anyMatch(Files::exists);

    private static final Set<String> announced = ConcurrentHashMap.newKeySet();

    private EngineRuntime() {}

    /** Applies the settings above; idempotent, and a property the user set on the command line wins. */
    public static void init() {
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
        if (!DRIVER && System.getProperty(CUDA_PROBE_LOG_LEVEL) == null) {
            System.setProperty(CUDA_PROBE_LOG_LEVEL, "error");
        }
    }

    private static final String CUDA_PROBE_LOG_LEVEL = "org.slf4j.simpleLogger.log.ai.djl.util.cuda.CudaUtils";

    /** GPUs PyTorch can use here; 0 without asking CUDA when the host has no NVIDIA driver. */
    static int gpuCount() {
        init();
        return DRIVER ? Engine.getEngine("PyTorch").getGpuCount() : 0;
    }

    /** A device as the options name it: {@code cpu} or {@code gpu:I}. */
    static String name(Device device) {
        return device.isGpu() ? "gpu:" + device.getDeviceId() : "cpu";
    }

    /** Logs the device an engine runs on, once per device and process. */
    static void announce(Device device, String dtype, String asked) {
        String name = name(device);
        if (announced.add(name + "/" + dtype)) {
            log.info("engine device: {} in {} (asked for: {})", name, dtype, asked);
        }
    }
}
