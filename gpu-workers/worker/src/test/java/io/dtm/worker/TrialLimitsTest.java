package io.dtm.worker;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.engine.LlamaConfig;
import io.dtm.engine.TestData;
import io.dtm.schemas.avro.ComponentTrial;
import java.io.IOException;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Issue 8, item 1: what one trial may ask of a worker, checked against the real tiny model's config. */
class TrialLimitsTest {

    private static ComponentTrial trial(int tokens, int offset) {
        return ComponentTrial.newBuilder().setTrialId("t").setSweepId("s").setModel("tiny").setPromptSetId("p")
                .setTokens(tokens).setPromptOffset(offset).build();
    }

    @Test
    void aBatchOverTheMemoryLimitIsRefusedBeforeAnythingIsAllocated() throws IOException {
        LlamaConfig tiny = LlamaConfig.read(TestData.tinyDir());
        List<int[]> prompts = Collections.nCopies(64, new int[400]);
        long needed = TrialLimits.batchBytes(tiny, 64, 400 + 100, 100, 4);
        assertDoesNotThrow(() -> TrialLimits.check(trial(100, 0), prompts, tiny, "float32", 64, needed));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrialLimits.check(trial(100, 0), prompts, tiny, "float32", 64, needed - 1));
        assertTrue(e.getMessage().contains("64 prompts x 500 positions") && e.getMessage().contains("--max-trial-mb"),
                e.getMessage());
        // a smaller batch or a narrower dtype needs less
        assertDoesNotThrow(() -> TrialLimits.check(trial(100, 0), prompts, tiny, "float32", 8, needed - 1));
        assertDoesNotThrow(() -> TrialLimits.check(trial(100, 0), prompts, tiny, "float16", 64, needed - 1));
    }

    @Test
    void promptAndTokensMustFitTheModelsPositions() throws IOException {
        LlamaConfig tiny = LlamaConfig.read(TestData.tinyDir());
        IllegalArgumentException tokens = assertThrows(IllegalArgumentException.class,
                () -> TrialLimits.checkTokens(trial(2_000_000_000, 0), tiny));
        assertTrue(tokens.getMessage().contains("only 512 positions"), tokens.getMessage());
        IllegalArgumentException prompt = assertThrows(IllegalArgumentException.class, () -> TrialLimits.check(
                trial(16, 30), List.of(new int[10], new int[497]), tiny, "float32", 64, Long.MAX_VALUE));
        assertTrue(prompt.getMessage().startsWith("prompt 31 has 497 tokens; with 16 generated tokens that is 513"),
                prompt.getMessage());
        assertDoesNotThrow(() -> TrialLimits.check(trial(16, 30), List.of(new int[496]), tiny, "float32", 64,
                Long.MAX_VALUE));
    }
}
