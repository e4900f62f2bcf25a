package io.dtm.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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

    /** Floats per chunk by default: 64 MB of staging whatever the model's size. */
    private static final long STAGING_FLOATS = 16L << 20;

    private final Path dir;
    private final long chunkFloats;
    private final List<SafeTensors> files = new ArrayList<>();
    private final Map<String, SafeTensors> byName = new HashMap<>();

    Checkpoint(ModelFiles model) throws IOException {
        this(model, STAGING_FLOATS);
    }

    /** With chunks of at most {@code chunkFloats} floats (a whole row, if a row is longer): tests use small ones. */
    Checkpoint(ModelFiles model, long chunkFloats) throws IOException {
        this.dir = model.dir();
        this.chunkFloats = chunkFloats;
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

    /**
     * Loads {@code name}, checked to have exactly {@code shape}, onto the manager's device in {@code dtype}, a chunk of
     * rows at a time: each chunk is widened to float32 in one reused native buffer and converted on the device, so
     * neither the Java heap nor native memory ever holds a float32 copy of a whole matrix (an 8B model's embeddings
     * are 2 GB in float32). PyTorch's own cast rounds to float16, as a Hugging Face load does.
     */
    NDArray load(String name, NDManager manager, DataType dtype, long... shape) throws IOException {
        SafeTensors st = shard(name, shape);
        long numel = new Shape(shape).size();
        long rowSize = shape.length > 1 ? numel / shape[0] : numel;
        long rowsPerChunk = Math.max(1, chunkFloats / rowSize);
        long rows = shape.length > 1 ? shape[0] : 1;
        NDList parts = new NDList();
        try {
            for (long row = 0; row < rows; row += rowsPerChunk) {
                long chunkRows = Math.min(rowsPerChunk, rows - row);
                int count = Math.toIntExact(chunkRows * rowSize);
                ByteBuffer buffer = staging(count);
                st.widen(name, row * rowSize, count, buffer);
                long[] chunkShape = shape.clone();
                if (shape.length > 1) {
                    chunkShape[0] = chunkRows;
                }
                parts.add(onDevice(manager.create(buffer, new Shape(chunkShape), DataType.FLOAT32), dtype));
            }
            NDArray out = parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts, 0);
            if (parts.size() > 1) {
                parts.close();
            }
            out.setName(name);
            return out;
        } catch (IOException | RuntimeException e) {
            parts.close();
            throw e;
        }
    }

    private ByteBuffer staging;

    private ByteBuffer staging(int floats) {
        if (staging == null || staging.capacity() < 4L * floats) {
            staging = ByteBuffer.allocateDirect(Math.multiplyExact(4, floats));
        }
        return staging.duplicate().order(ByteOrder.nativeOrder()).clear().limit(4 * floats);
    }

    /**
     * The chunk as an array of its own in {@code dtype}. On a GPU {@code create} already copied the staging buffer
     * to the device; on the CPU the array aliases the buffer, so it is copied before the buffer is reused. (DJL's
     * {@code toType(sameType, true)} does not copy: PyTorch's {@code to} returns the same tensor.)
     */
    private static NDArray onDevice(NDArray chunk, DataType dtype) {
        if (chunk.getDevice().isGpu() && dtype == DataType.FLOAT32) {
            return chunk;
        }
        NDArray own = dtype == DataType.FLOAT32 ? chunk.duplicate() : chunk.toType(dtype, false);
        chunk.close();
        return own;
    }

    private SafeTensors shard(String name, long[] shape) throws IOException {
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
        return st;
    }

    @Override
    public void close() throws IOException {
        for (SafeTensors f : files) {
            f.close();
        }
    }
}
