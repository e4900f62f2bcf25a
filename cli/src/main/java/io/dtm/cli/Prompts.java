package io.dtm.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Prompt files: one prompt per line, blank lines ignored. */
final class Prompts {

    private Prompts() {}

    static List<String> read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("prompt file " + file + " does not exist");
        }
        return parse(decode(Files.readAllBytes(file), file.toString()), file.toString());
    }

    /** Strict UTF-8, line by line, so that an invalid byte is reported where it is, not as "Input length = 1". */
    private static String decode(byte[] bytes, String source) throws IOException {
        StringBuilder text = new StringBuilder(bytes.length);
        int line = 1;
        for (int start = 0; start < bytes.length; line++) {
            int end = start;
            while (end < bytes.length && bytes[end] != '\n') {
                end++;
            }
            ByteBuffer in = ByteBuffer.wrap(bytes, start, end - start);
            try {
                text.append(StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(in)).append('\n');
            } catch (CharacterCodingException e) {
                throw new IOException("prompt file " + source + " line " + line + " is not valid UTF-8 (byte "
                        + (in.position() - start + 1) + " of the line)", e);
            }
            start = end + 1;
        }
        return text.toString();
    }

    /** The demo's own 64 prompts, bundled with the launcher. */
    static List<String> demo() throws IOException {
        try (InputStream in = Prompts.class.getResourceAsStream("demo-prompts.txt")) {
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), "demo-prompts.txt");
        }
    }

    private static List<String> parse(String text, String source) throws IOException {
        List<String> prompts = text.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
        if (prompts.isEmpty()) {
            throw new IOException("prompt file " + source + " has no prompts");
        }
        return prompts;
    }
}
