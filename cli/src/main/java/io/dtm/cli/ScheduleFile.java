package io.dtm.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.engine.Trial;
import io.dtm.schemas.CompressionSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;

/**
 * A schedule given as a file: {@code {"components": {component: compression, ...}}}, or any dtm output that holds one
 * under {@code "schedule"} (what {@code dtm demo --out} and a sweep's result write).
 */
final class ScheduleFile {

    private ScheduleFile() {}

    static Trial read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("schedule file " + file + " does not exist");
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IOException("schedule file " + file + " is not JSON (line " + e.getLocation().getLineNr() + ")");
        }
        JsonNode components = root.path("components").isObject() ? root.path("components")
                : root.path("schedule").path("components");
        if (!components.isObject()) {
            throw new IllegalArgumentException("schedule file " + file + " has no \"components\" object (nor"
                    + " \"schedule\": {\"components\": ...})");
        }
        Trial schedule = Trial.none();
        for (Iterator<Map.Entry<String, JsonNode>> it = components.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new IllegalArgumentException("schedule file " + file + ": the compression of " + e.getKey()
                        + " is not a text such as prune:0.5 or int8_rowwise");
            }
            try {
                schedule = schedule.plus(e.getKey(), CompressionSpec.parse(e.getValue().asText()));
            } catch (IllegalArgumentException bad) {
                throw new IllegalArgumentException("schedule file " + file + ", " + e.getKey() + ": " + bad.getMessage());
            }
        }
        return schedule;
    }
}
