package io.dtm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One {@code .safetensors} file: an 8-byte little-endian header length, a JSON header of
 * {@code name -> {dtype, shape, data_offsets}}, then raw little-endian tensor bytes.
 *
 * <p>Tensors are widened to float32 in Java: DJL crashes the JVM on any BFLOAT16 array, so bf16 and f16 never reach it.
 */
final class SafeTensors implements AutoCloseable {

    record Entry(String dtype, long[] shape, long begin, long end) {
        long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Entry> entries = new LinkedHashMap<>();

    SafeTensors(Path file) throws IOException {
        this.file = file;
        this.channel = FileChannel.open(file, StandardOpenOption.READ);
        try {
            long size = channel.size();
            if (size < 8) {
                throw new IOException(file + " is not a safetensors file (" + size + " bytes, shorter than its length prefix)");
            }
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            channel.read(len, 0);
            long headerLength = len.flip().getLong();
            if (headerLength <= 0 || headerLength > 100_000_000 || 8 + headerLength > size) {
                throw new IOException(file + " is not a safetensors file (header length " + headerLength + ")");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLength);
            channel.read(header, 8);
            this.dataStart = 8 + headerLength;
            JsonNode json;
            try {
                json = new ObjectMapper().readTree(header.array());
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IOException(file + " has a safetensors header that is not JSON: " + e.getOriginalMessage(), e);
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = json.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                JsonNode v = e.getValue();
                long[] shape = new long[v.path("shape").size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = v.path("shape").path(i).asLong();
                }
                Entry entry = new Entry(v.path("dtype").asText(), shape,
                        v.path("data_offsets").path(0).asLong(), v.path("data_offsets").path(1).asLong());
                if (entry.begin() < 0 || entry.end() < entry.begin() || dataStart + entry.end() > size) {
                    throw new IOException("tensor '" + e.getKey() + "' in " + file + " has data offsets ["
                            + entry.begin() + ", " + entry.end() + ") beyond the file's " + (size - dataStart)
                            + " data bytes (truncated file?)");
                }
                entries.put(e.getKey(), entry);
            }
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    Map<String, Entry> entries() {
        return entries;
    }

    Path file() {
        return file;
    }

    /** Reads a tensor as float32, widening BF16 (upper half of a float32) and F16 (IEEE half) exactly. */
    float[] readFloats(String name) throws IOException {
        Entry e = entries.get(name);
        if (e == null) {
            throw new IOException(file + " has no tensor '" + name + "'");
        }
        long n = e.numel();
        int width = switch (e.dtype()) {
            case "F32" -> 4;
            case "BF16", "F16" -> 2;
            default -> throw new IOException("tensor '" + name + "' in " + file + " has unsupported dtype " + e.dtype()
                    + " (supported: F32, BF16, F16)");
        };
        if (e.end() - e.begin() != n * width) {
            throw new IOException("tensor '" + name + "' in " + file + " has " + (e.end() - e.begin())
                    + " bytes, expected " + n * width + " for shape " + java.util.Arrays.toString(e.shape()));
        }
        if (n > Integer.MAX_VALUE) {
            throw new IOException("tensor '" + name + "' has " + n + " elements; more than one Java array holds");
        }
        ByteBuffer bytes = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + e.begin(), e.end() - e.begin())
                .order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[(int) n];
        switch (e.dtype()) {
            case "F32" -> {
                FloatBuffer fb = bytes.asFloatBuffer();
                fb.get(out);
            }
            case "BF16" -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = Float.intBitsToFloat((bytes.getShort(2 * i) & 0xffff) << 16);
                }
            }
            default -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = halfToFloat(bytes.getShort(2 * i));
                }
            }
        }
        return out;
    }

    /** IEEE 754 binary16 to binary32, exact for normals, subnormals, infinities and NaN (Java 17 has no built-in). */
    static float halfToFloat(short half) {
        int h = half & 0xffff;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) {
            // subnormal half: mant * 2^-24, exactly representable in float32
            float magnitude = mant * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
