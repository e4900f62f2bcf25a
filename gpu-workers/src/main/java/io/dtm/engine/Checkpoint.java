package io.dtm.engine;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The tensors of a Hugging Face checkpoint directory, by name: a single {@code model.safetensors} or shards listed in
 * {@code model.safetensors.index.json}, as {@link ModelFiles} resolved and confined them. Every read checks the tensor's shape against what the config implies, so a
 * mismatched checkpoint fails with the tensor's name instead of producing garbage.
 */
final class Checkpoint implements AutoCloseable {

    private final Path dir;
    private final List<SafeTensors> files = new ArrayList<>();
    private final Map<String, SafeTensors> byName = new HashMap<>();

    Checkpoint(ModelFiles model) throws IOException {
        this.dir = model.dir();
        try {
            for (Map.Entry<Path, List<String>> shard : model.shards().entrySet()) {
                SafeTensors st = new SafeTensors(shard.getKey());
                files.add(st);
                List<String> names = shard.getValue().isEmpty() ? List.copyOf(st.entries().keySet()) : shard.getValue();
                names.forEach(n -> byName.put(n, st));
            }
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    Checkpoint(Path dir) throws IOException {
        this(ModelFiles.resolve(dir, null));
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
