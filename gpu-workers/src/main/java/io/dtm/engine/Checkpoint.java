package io.dtm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The tensors of a Hugging Face checkpoint directory, by name: a single {@code model.safetensors} or shards listed in
 * {@code model.safetensors.index.json}. Every read checks the tensor's shape against what the config implies, so a
 * mismatched checkpoint fails with the tensor's name instead of producing garbage.
 */
final class Checkpoint implements AutoCloseable {

    private final Path dir;
    private final List<SafeTensors> files = new ArrayList<>();
    private final Map<String, SafeTensors> byName = new HashMap<>();

    Checkpoint(Path dir) throws IOException {
        this.dir = dir;
        Path single = dir.resolve("model.safetensors");
        Path index = dir.resolve("model.safetensors.index.json");
        try {
            if (Files.isRegularFile(index)) {
                JsonNode weightMap = new ObjectMapper().readTree(index.toFile()).path("weight_map");
                Map<String, SafeTensors> opened = new HashMap<>();
                for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    String shard = e.getValue().asText();
                    Path shardFile = dir.resolve(shard);
                    if (!Files.isRegularFile(shardFile)) {
                        throw new FileNotFoundException("checkpoint shard " + shardFile + " listed in " + index + " is missing");
                    }
                    SafeTensors st = opened.get(shard);
                    if (st == null) {
                        st = new SafeTensors(shardFile);
                        opened.put(shard, st);
                        files.add(st);
                    }
                    byName.put(e.getKey(), st);
                }
            } else if (Files.isRegularFile(single)) {
                SafeTensors st = new SafeTensors(single);
                files.add(st);
                st.entries().keySet().forEach(n -> byName.put(n, st));
            } else {
                throw new FileNotFoundException("model directory " + dir
                        + " has neither model.safetensors nor model.safetensors.index.json");
            }
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    boolean has(String name) {
        return byName.containsKey(name);
    }

    /** Reads {@code name} as float32 and checks it has exactly {@code shape}. */
    float[] read(String name, long... shape) throws IOException {
        SafeTensors st = byName.get(name);
        if (st == null) {
            throw new IOException("checkpoint " + dir + " has no tensor '" + name + "'");
        }
        SafeTensors.Entry entry = st.entries().get(name);
        if (entry == null) {
            throw new IOException("tensor '" + name + "' is listed in the index but missing from " + st.file());
        }
        long[] actual = entry.shape();
        if (!Arrays.equals(actual, shape)) {
            throw new IOException("tensor '" + name + "' in " + st.file() + " has shape " + Arrays.toString(actual)
                    + ", expected " + Arrays.toString(shape) + " from config.json");
        }
        return st.readFloats(name);
    }

    @Override
    public void close() throws IOException {
        for (SafeTensors f : files) {
            f.close();
        }
    }
}
