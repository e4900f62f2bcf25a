package io.dtm.schemas.serde;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.Test;

class WireFormatTest {

    @Test
    void headerIsMagicByteThenBigEndianId() {
        assertArrayEquals(new byte[] {0, 0x01, 0x02, 0x03, 0x04}, WireFormat.header(0x01020304));
        assertEquals(0x01020304, WireFormat.schemaId(WireFormat.header(0x01020304)));
        assertEquals(Integer.MAX_VALUE, WireFormat.schemaId(WireFormat.header(Integer.MAX_VALUE)));
    }

    @Test
    void schemaIdRejectsWhatIsNotWireFormat() {
        assertEquals("not in Confluent wire format: first byte 0x01, expected 0x00",
                assertThrows(SerializationException.class,
                        () -> WireFormat.schemaId(new byte[] {1, 0, 0, 0, 1, 2})).getMessage());
        assertEquals("not in Confluent wire format: 4 bytes, shorter than the 5-byte header",
                assertThrows(SerializationException.class,
                        () -> WireFormat.schemaId(new byte[] {0, 0, 0, 1})).getMessage());
    }

    @Test
    void describeSaysWhatTheBytesAre() {
        assertEquals("null", WireFormat.describe(null));
        assertEquals("empty (0 bytes)", WireFormat.describe(new byte[0]));
        byte[] wire = new byte[] {0, 0, 0, 0, 7, 2, 'a', 'b'};
        assertEquals("Confluent wire format, schema id 7, 3 bytes of Avro", WireFormat.describe(wire));
        assertEquals("not in Confluent wire format: first byte 0x7b, expected 0x00 (9 bytes, starts \"{\"a\": 12}\")",
                WireFormat.describe("{\"a\": 12}".getBytes(StandardCharsets.US_ASCII)));
        assertEquals("not in Confluent wire format: first byte 0xff, expected 0x00 (6 bytes, starts 0xff0001020304)",
                WireFormat.describe(new byte[] {(byte) 0xff, 0, 1, 2, 3, 4}));
        byte[] longText = "x".repeat(30).getBytes(StandardCharsets.US_ASCII);
        assertEquals("not in Confluent wire format: first byte 0x78, expected 0x00 (30 bytes, starts \""
                + "x".repeat(24) + "...\")", WireFormat.describe(longText));
    }
}
