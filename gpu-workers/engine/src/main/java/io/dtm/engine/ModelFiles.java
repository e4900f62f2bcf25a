package io.dtm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The files of a Hugging Face model directory ({@code config.json}, {@code tokenizer.json}, one
 * {@code model.safetensors} or the shards {@code model.safetensors.index.json} lists), each resolved to its real path
 * and checked to stay where it must: a shard name such as {@code ../../etc/passwd} is refused, and with a root every
 * file (symbolic links followed) must lie inside it. Error messages name the file and the rule, never file contents.
 */
public final class ModelFiles {

    private final Path dir;
    private final Path config;
    private final Path tokenizer;
    private final Path index;
    /** weight file → the tensor names the index assigns it (empty for a single file: all of its tensors). */
    private final Map<Path, List<String>> shards;

    private ModelFiles(Path dir, Path config, Path tokenizer, Path index, Map<Path, List<String>> shards) {
        this.dir = dir;
        this.config = config;
        this.tokenizer = tokenizer;
        this.index = index;
        this.shards = shards;
    }

    /**
     * Resolves a model directory. {@code root}, when not null, confines every file to it after following links: what
     * a worker gives so that a trial naming a model cannot read anything outside its model root.
     */
    public static ModelFiles resolve(Path modelDir, Path root) throws IOException {
        Path realRoot = root == null ? null : root.toRealPath();
        Path dir = realDirIn(modelDir, realRoot);
        Path config = file(dir, "config.json", realRoot, "has no config.json");
        Path tokenizer = file(dir, "tokenizer.json", realRoot, "has no tokenizer.json");
        Path index = dir.resolve("model.safetensors.index.json");
        Map<Path, List<String>> shards = new LinkedHashMap<>();
        if (Files.isRegularFile(index)) {
            index = confined(index, realRoot, "checkpoint index");
            JsonNode weightMap;
            try {
                weightMap = new ObjectMapper().readTree(index.toFile()).path("weight_map");
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IOException("checkpoint index " + index + " is not valid JSON", e);
            }
            if (!weightMap.isObject()) {
                throw new IOException("checkpoint index " + index + " has no weight_map object");
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                Path shard = shardFile(dir, index, e.getValue().asText(), realRoot);
                shards.computeIfAbsent(shard, s -> new java.util.ArrayList<>()).add(e.getKey());
            }
        } else if (Files.isRegularFile(dir.resolve("model.safetensors"))) {
            index = null;
            shards.put(confined(dir.resolve("model.safetensors"), realRoot, "weights file"), List.of());
        } else {
            throw new FileNotFoundException("model directory " + modelDir
                    + " has neither model.safetensors nor model.safetensors.index.json");
        }
        return new ModelFiles(dir, config, tokenizer, index, shards);
    }

    /** A shard name from the index: a plain file name in the model directory, nothing that climbs out of it. */
    private static Path shardFile(Path dir, Path index, String name, Path root) throws IOException {
        Path relative = Path.of(name).normalize();
        if (name.isEmpty() || relative.isAbsolute() || relative.startsWith("..") || relative.getNameCount() != 1) {
            throw new IOException("checkpoint index " + index + " names a shard outside the model directory (shard"
                    + " names must be plain file names)");
        }
        Path shard = dir.resolve(relative);
        if (!Files.isRegularFile(shard)) {
            throw new FileNotFoundException("checkpoint shard " + shard + " listed in " + index + " is missing");
        }
        return confined(shard, root, "checkpoint shard");
    }

    private static Path file(Path dir, String name, Path root, String missing) throws IOException {
        Path f = dir.resolve(name);
        if (!Files.isRegularFile(f)) {
            throw new FileNotFoundException("model directory " + dir + " " + missing);
        }
        return confined(f, root, name);
    }

    /** The real path of {@code p}, refused when a root is set and the path (links followed) leaves it. */
    /** The model directory with links resolved, refused unless it exists inside {@code root} (null: anywhere). */
    public static Path realDir(Path modelDir, Path root) throws IOException {
        return realDirIn(modelDir, root == null ? null : root.toRealPath());
    }

    private static Path realDirIn(Path modelDir, Path realRoot) throws IOException {
        if (!Files.isDirectory(modelDir)) {
            throw new FileNotFoundException("model directory " + modelDir + " does not exist");
        }
        return confined(modelDir, realRoot, "model directory");
    }

    private static Path confined(Path p, Path root, String what) throws IOException {
        Path real = p.toRealPath();
        if (root != null && !real.startsWith(root)) {
            throw new IOException(what + " " + p + " resolves outside the model root " + root);
        }
        return real;
    }

    public Path dir() {
        return dir;
    }

    Path config() {
        return config;
    }

    Path tokenizer() {
        return tokenizer;
    }

    /** The index file, or null for a single {@code model.safetensors}. */
    Path index() {
        return index;
    }

    /** Weight files in index order, each with the tensor names the index assigns it (empty: all of its tensors). */
    Map<Path, List<String>> shards() {
        return shards;
    }

    /** The safetensors dtype the weights are stored in: the first F32, BF16 or F16 tensor's. */
    String weightDtype() throws IOException {
        try (SafeTensors first = new SafeTensors(shards.keySet().iterator().next())) {
            return first.entries().values().stream().map(SafeTensors.Entry::dtype)
                    .filter(d -> d.equals("F32") || d.equals("BF16") || d.equals("F16")).findFirst()
                    .orElseThrow(() -> new IOException(first.file() + " holds no F32, BF16 or F16 tensor"));
        }
    }

    /** Bits per stored weight value: 32 for float32, 16 for bfloat16 and float16. */
    public int weightBits() throws IOException {
        return weightDtype().equals("F32") ? 32 : 16;
    }

    /**
     * A content digest of the model: SHA-256 over {@code config.json}, the tokenizer and every weight file in name
     * order, so that the same bytes anywhere give the same id and a model changed in place gets a new one. Weight
     * files are hashed in parallel.
     */
    public String digest() throws IOException {
        TreeSet<Path> weights = new TreeSet<>(shards.keySet());
        Map<Path, byte[]> fileDigests = new java.util.concurrent.ConcurrentHashMap<>();
        try {
            weights.parallelStream().forEach(f -> fileDigests.put(f, sha256(f)));
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        MessageDigest all = sha256();
        for (Path f : List.of(config, tokenizer)) {
            all.update(sha256(f));
        }
        for (Path f : weights) {
            all.update(f.getFileName().toString().getBytes(StandardCharsets.UTF_8));
            all.update(fileDigests.get(f));
        }
        return HexFormat.of().formatHex(all.digest());
    }

    private static byte[] sha256(Path file) {
        MessageDigest md = sha256();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            for (long pos = 0; pos < size; pos += 1 << 30) {
                MappedByteBuffer chunk = ch.map(FileChannel.MapMode.READ_ONLY, pos, Math.min(1L << 30, size - pos));
                md.update(chunk);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return md.digest();
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }
}
