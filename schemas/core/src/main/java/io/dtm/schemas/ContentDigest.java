package io.dtm.schemas;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * SHA-256 over length-prefixed fields, so ("ab", "c") and ("a", "bc") never hash alike and null is distinct from "".
 * Every id that must agree between services (trial ids, prompt-set ids, a baseline's prompt digest) is one of these.
 */
public final class ContentDigest {
    private final MessageDigest sha256;

    public ContentDigest() {
        try {
            sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime provides SHA-256", e);
        }
    }

    public ContentDigest add(String text) {
        if (text == null) {
            return add(-1);
        }
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        add(bytes.length);
        sha256.update(bytes);
        return this;
    }

    public ContentDigest add(int number) {
        sha256.update(ByteBuffer.allocate(Integer.BYTES).putInt(number).array());
        return this;
    }

    /** All 32 bytes, as 64 hex digits. */
    public String hex() {
        return HexFormat.of().formatHex(sha256.digest());
    }

    /** The first 8 bytes, as 16 hex digits: enough to tell a sweep's trials apart, short enough for keys. */
    public String shortHex() {
        return HexFormat.of().formatHex(sha256.digest(), 0, 8);
    }
}
