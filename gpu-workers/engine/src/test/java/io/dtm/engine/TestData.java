package io.dtm.engine;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/** Locates the shared models, golden files and held-out text for the engine tests. */
public final class TestData {

    static final ObjectMapper JSON = new ObjectMapper();

    private TestData() {}

    /**
     * The device the device-agnostic engine tests run on: {@code -Ddtm.test.device=gpu} runs them on a GPU
     * ({@code gpu-workers/gpu/bench.sh tests}); the CPU otherwise.
     */
    static String device() {
        return System.getProperty("dtm.test.device", "cpu");
    }

    /** {@link #device()} as the engine resolves it ({@code gpu} is the first GPU). */
    static ai.djl.Device resolvedDevice() {
        return new EngineOptions(device(), "float32", 1, 0).resolveDevice();
    }

    /**
     * The shared directory: Surefire's {@code dtm.shared} property, else {@code ../shared} beside the repository root
     * (tried relative to the working directory, whether that is the repository root or the module directory).
     */
    static Path shared() {
        List<Path> candidates = new ArrayList<>();
        String property = System.getProperty("dtm.shared");
        if (property != null && !property.isBlank()) {
            candidates.add(Path.of(property));
        }
        Path cwd = Path.of(System.getProperty("user.dir"));
        candidates.add(cwd.resolve("../shared"));
        candidates.add(cwd.resolve("../../shared"));
        for (Path p : candidates) {
            if (Files.isDirectory(p.resolve("models")) && Files.isDirectory(p.resolve("golden"))) {
                return p.toAbsolutePath().normalize();
            }
        }
        throw new IllegalStateException("shared directory with models/ and golden/ not found; tried " + candidates);
    }

    public static Path tinyDir() {
        return shared().resolve("models/tiny-random-llama");
    }

    static Path brownDir() {
        return shared().resolve("models/brown-llama-8m");
    }

    static Path golden(String model) {
        return shared().resolve("golden/" + model + ".shared.json");
    }

    static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static List<String> goldenPrompts(String model) {
        List<String> out = new ArrayList<>();
        readJson(golden(model)).path("prompts").forEach(p -> out.add(p.asText()));
        return out;
    }

    /** Non-empty held-out paragraphs, in file order. */
    static List<String> heldoutParagraphs() {
        try {
            return Files.readAllLines(shared().resolve("data/heldout-paragraphs.txt")).stream()
                    .map(String::strip).filter(s -> !s.isEmpty()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.path(i).asInt();
        }
        return out;
    }

    static double[] doubles(JsonNode array) {
        double[] out = new double[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.path(i).asDouble();
        }
        return out;
    }

    /** Copies a model directory (files only) into {@code target}, leaving the copies writable. */
    static Path copyModel(Path source, Path target) throws IOException {
        Files.createDirectories(target);
        try (Stream<Path> files = Files.list(source)) {
            for (Path f : files.sorted(Comparator.naturalOrder()).toList()) {
                Path t = target.resolve(f.getFileName());
                Files.copy(f, t);
                assertTrue(t.toFile().setWritable(true, true), "cannot make " + t + " writable");
            }
        }
        return target;
    }

    /** A whole tensor of a safetensors file widened to float32, as the loader widens it. */
    static float[] floats(SafeTensors st, String name) throws IOException {
        long n = st.entry(name).numel();
        java.nio.ByteBuffer out = java.nio.ByteBuffer.allocate(Math.toIntExact(4 * n)).order(java.nio.ByteOrder.nativeOrder());
        st.widen(name, 0, (int) n, out);
        float[] values = new float[(int) n];
        out.asFloatBuffer().get(values);
        return values;
    }

    /** A tensor as the engine loads it (chunked, onto the CPU, float32), checked against {@code shape}. */
    static float[] load(Checkpoint checkpoint, String name, long... shape) throws IOException {
        try (ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager(ai.djl.Device.cpu(), "PyTorch")) {
            return checkpoint.load(name, m, ai.djl.ndarray.types.DataType.FLOAT32, shape).toFloatArray();
        }
    }
}
