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

/** Prompt files (one prompt per line) and text files (one document per line); blank lines ignored. */
final class Prompts {

    private Prompts() {}

    static List<String> read(Path file) throws IOException {
        return read(file, "prompt file", "has no prompts");
    }

    /**
     * A text for the text metrics. A line scores once it has a token after BOS, which any non-blank line has, so a file
     * of blank lines is the one that cannot be scored.
     */
    static List<String> text(Path file) throws IOException {
        return read(file, "text file", "has no line long enough to score (every line is blank)");
    }

    private static List<String> read(Path file, String what, String empty) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException(what + " " + file + " does not exist");
        }
        return parse(decode(Files.readAllBytes(file), what + " " + file), what + " " + file, empty);
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
                throw new IOException(source + " line " + line + " is not valid UTF-8 (byte "
                        + (in.position() - start + 1) + " of the line)", e);
            }
            start = end + 1;
        }
        return text.toString();
    }

    /** The demo's own 64 prompts, bundled with the launcher. */
    static List<String> demo() throws IOException {
        return resource("demo-prompts.txt");
    }

    /** The demo's own text: 32 English paragraphs written for it, one per line. */
    static List<String> demoText() throws IOException {
        return resource("demo-text.txt");
    }

    private static List<String> resource(String name) throws IOException {
        try (InputStream in = Prompts.class.getResourceAsStream(name)) {
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), name, "is empty");
        }
    }

    private static List<String> parse(String text, String source, String empty) throws IOException {
        List<String> lines = text.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
        if (lines.isEmpty()) {
            throw new IOException(source + " " + empty);
        }
        return lines;
    }
}
