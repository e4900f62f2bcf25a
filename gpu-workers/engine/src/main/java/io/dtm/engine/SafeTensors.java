package io.dtm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
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
                // the value itself is file content: an error reason must not echo it
                throw new IOException(file + " is not a safetensors file (its header length prefix is out of range)");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLength);
            channel.read(header, 8);
            this.dataStart = 8 + headerLength;
            JsonNode json;
            try {
                json = new ObjectMapper().readTree(header.array());
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                // Jackson's message quotes the offending token; name only where it is
                throw new IOException(file + " has a safetensors header that is not JSON (at byte "
                        + (8 + e.getLocation().getByteOffset()) + ")");
            }
            if (!json.isObject()) {
                throw new IOException(file + " has a safetensors header that is not a JSON object");
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
                    throw new IOException("tensor '" + shown(e.getKey()) + "' in " + file + " has data offsets ["
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

    /** A name from the header as an error may show it: tensor names are short identifiers, anything else is not echoed. */
    private static String shown(String name) {
        return name.matches("[A-Za-z0-9_.\\-]{1,200}") ? name : "(unreadable name)";
    }

    Map<String, Entry> entries() {
        return entries;
    }

    Path file() {
        return file;
    }

    /**
     * Widens {@code count} elements of a tensor, from flat index {@code first}, to float32 in {@code out} (native
     * order, from its position 0): BF16 is the upper half of a float32 and F16 an IEEE half, both exact. Large reads
     * are split over the common pool, since the widening loop, not the disk, bounds a big checkpoint's load time.
     */
    void widen(String name, long first, int count, ByteBuffer out) throws IOException {
        Entry e = entry(name);
        int width = width(name, e);
        if (first < 0 || first + count > e.numel()) {
            throw new IndexOutOfBoundsException("elements [" + first + ", " + (first + count) + ") of tensor '" + name
                    + "' with " + e.numel());
        }
        ByteBuffer bytes = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + e.begin() + first * width,
                (long) count * width).order(ByteOrder.LITTLE_ENDIAN);
        IntBuffer dst = out.duplicate().order(ByteOrder.nativeOrder()).asIntBuffer();
        int parts = count < (1 << 20) ? 1 : Runtime.getRuntime().availableProcessors();
        java.util.stream.IntStream.range(0, parts).parallel().forEach(part -> {
            int from = (int) ((long) count * part / parts);
            int to = (int) ((long) count * (part + 1) / parts);
            switch (e.dtype()) {
                case "F32" -> {
                    IntBuffer src = bytes.asIntBuffer();
                    for (int i = from; i < to; i++) {
                        dst.put(i, src.get(i));
                    }
                }
                case "BF16" -> {
                    ShortBuffer src = bytes.asShortBuffer();
                    for (int i = from; i < to; i++) {
                        dst.put(i, (src.get(i) & 0xffff) << 16);
                    }
                }
                default -> {
                    ShortBuffer src = bytes.asShortBuffer();
                    for (int i = from; i < to; i++) {
                        dst.put(i, Float.floatToRawIntBits(halfToFloat(src.get(i))));
                    }
                }
            }
        });
    }

    /** Where a tensor's bytes start in the file. */
    long dataOffset(String name) throws IOException {
        return dataStart + entry(name).begin();
    }

    /** Copies a tensor's raw bytes, as stored, to {@code out}. */
    void copyRaw(String name, java.nio.channels.WritableByteChannel out) throws IOException {
        Entry e = entry(name);
        long position = dataStart + e.begin();
        long remaining = e.end() - e.begin();
        while (remaining > 0) {
            long sent = channel.transferTo(position, remaining, out);
            position += sent;
            remaining -= sent;
        }
    }

    Entry entry(String name) throws IOException {
        Entry e = entries.get(name);
        if (e == null) {
            throw new IOException(file + " has no tensor '" + name + "'");
        }
        return e;
    }

    /** Bytes per element of a supported dtype, after checking the tensor's byte length matches its shape. */
    private int width(String name, Entry e) throws IOException {
        int width = switch (e.dtype()) {
            case "F32" -> 4;
            case "BF16", "F16" -> 2;
            default -> throw new IOException("tensor '" + name + "' in " + file + " has unsupported dtype "
                    + (e.dtype().matches("[A-Za-z0-9_]{1,12}") ? e.dtype() : "(unreadable)")
                    + " (supported: F32, BF16, F16)");
        };
        long n = e.numel();
        if (e.end() - e.begin() != n * width) {
            throw new IOException("tensor '" + name + "' in " + file + " has " + (e.end() - e.begin())
                    + " bytes, expected " + n * width + " for shape " + java.util.Arrays.toString(e.shape()));
        }
        return width;
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
