package io.dtm.cli;

import java.io.IOException;
import java.io.InputStream;
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
        return parse(Files.readString(file, StandardCharsets.UTF_8), file.toString());
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
