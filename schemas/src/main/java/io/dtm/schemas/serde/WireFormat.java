package io.dtm.schemas.serde;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.errors.SerializationException;

/**
 * Confluent's wire format for a record value: magic byte {@code 0}, the writer schema's registry id as a 4-byte
 * big-endian int, then the Avro binary encoding. Kept apart from the serde so that the dead-letter code can say what a
 * payload is without decoding it.
 */
public final class WireFormat {
    private WireFormat() {}

    public static final byte MAGIC_BYTE = 0;
    /** Magic byte plus schema id; the Avro payload starts here. */
    public static final int HEADER_LENGTH = 5;

    /** The five header bytes announcing {@code schemaId}. */
    public static byte[] header(int schemaId) {
        return ByteBuffer.allocate(HEADER_LENGTH).put(MAGIC_BYTE).putInt(schemaId).array();
    }

    /**
     * The schema id of a payload in wire format.
     *
     * @throws SerializationException if the bytes are too short for a header or do not start with the magic byte
     */
    public static int schemaId(byte[] bytes) {
        if (bytes == null || bytes.length < HEADER_LENGTH) {
            throw new SerializationException("not in Confluent wire format: " + (bytes == null ? 0 : bytes.length)
                    + " bytes, shorter than the " + HEADER_LENGTH + "-byte header");
        }
        if (bytes[0] != MAGIC_BYTE) {
            throw new SerializationException(String.format("not in Confluent wire format: first byte 0x%02x, expected 0x%02x",
                    bytes[0] & 0xff, MAGIC_BYTE));
        }
        return ByteBuffer.wrap(bytes, 1, 4).getInt();
    }

    /**
     * One line on what {@code bytes} are, for dead letters and logs: the schema id and payload size of a well-formed
     * payload, or why it is not one and how it starts, e.g. {@code not in Confluent wire format: first byte 0x7b,
     * expected 0x00 (17 bytes, starts "{\"trialId\":...")}.
     */
    public static String describe(byte[] bytes) {
        if (bytes == null) {
            return "null";
        }
        if (bytes.length == 0) {
            return "empty (0 bytes)";
        }
        try {
            int id = schemaId(bytes);
            return "Confluent wire format, schema id " + id + ", " + (bytes.length - HEADER_LENGTH)
                    + " bytes of Avro";
        } catch (SerializationException e) {
            return e.getMessage() + " (" + bytes.length + " bytes, starts " + preview(bytes) + ")";
        }
    }

    /** The first bytes as text when they are printable ASCII (JSON, a string key), as hex otherwise. */
    private static String preview(byte[] bytes) {
        int n = Math.min(bytes.length, 24);
        boolean printable = true;
        for (int i = 0; i < n && printable; i++) {
            printable = bytes[i] >= 0x20 && bytes[i] < 0x7f;
        }
        String more = bytes.length > n ? "..." : "";
        if (printable) {
            return "\"" + new String(bytes, 0, n, StandardCharsets.US_ASCII) + more + "\"";
        }
        StringBuilder hex = new StringBuilder("0x");
        for (int i = 0; i < n; i++) {
            hex.append(String.format("%02x", bytes[i] & 0xff));
        }
        return hex.append(more).toString();
    }
}
