package io.dtm.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the launcher lives: {@code DTM_HOME} (set by {@code ./dtm}), else the working directory. */
final class Launcher {

    private Launcher() {}

    static Path home() {
        String home = System.getenv("DTM_HOME");
        Path dir = home != null ? Path.of(home) : Path.of("").toAbsolutePath();
        if (!Files.isDirectory(dir)) {
            throw new IllegalStateException("DTM_HOME " + dir + " is not a directory");
        }
        return dir;
    }
}
