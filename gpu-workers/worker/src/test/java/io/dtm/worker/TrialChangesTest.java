package io.dtm.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.dtm.engine.DivergenceEngine;
import io.dtm.engine.EngineOptions;
import io.dtm.engine.TestData;
import io.dtm.engine.Trial;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.avro.ComponentTrial;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.TrialKind;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** What model a trial asks a worker to score, the baselines of a target allocation included. */
class TrialChangesTest {

    private static DivergenceEngine engine;

    /** Both layers' q_proj and down_proj of the tiny model, alphabetically as a schedule lists them. */
    private static final List<String> SORTED = List.of("model.layers.0.mlp.down_proj", "model.layers.0.self_attn.q_proj",
            "model.layers.1.mlp.down_proj", "model.layers.1.self_attn.q_proj");

    @BeforeAll
    static void load() throws Exception {
        engine = DivergenceEngine.load(TestData.tinyDir(), new EngineOptions("cpu", "float32", 8,
                EngineOptions.DEFAULT_CACHE_BUDGET));
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static ComponentTrial trial(TrialKind kind, String component, String compression, String... schedule) {
        List<ScheduleEntry> entries = SORTED.stream().map(c -> new ScheduleEntry(c, schedule[SORTED.indexOf(c)]))
                .toList();
        return ComponentTrial.newBuilder().setTrialId("t").setSweepId("s").setKind(kind).setModel("tiny")
                .setPromptSetId("p").setComponent(component).setCompression(compression).setSchedule(entries)
                .setPrompts(List.of("x")).build();
    }

    @Test
    void aCandidateReplacesItsComponentsEntryAndAScheduleIsItself() {
        Trial candidate = TrialWorker.changes(trial(TrialKind.CANDIDATE, SORTED.get(1), "prune:0.75", "prune:0.1",
                "prune:0.2", "prune:0.3", "int8_rowwise"), engine);
        assertEquals(CompressionSpec.prune(0.75), candidate.changes().get(SORTED.get(1)));
        assertEquals(4, candidate.changes().size());
        Trial schedule = TrialWorker.changes(trial(TrialKind.SCHEDULE, null, null, "prune:0.1", "prune:0.2",
                "prune:0.3", "int8_rowwise"), engine);
        assertEquals(CompressionSpec.int8(), schedule.changes().get(SORTED.get(3)));
    }

    @Test
    void theUniformBaselineIsItsScheduleAndTheGlobalOneIsTheEnginesThresholdInModelOrder() {
        String[] uniform = {"prune:0.4", "prune:0.4", "prune:0.4", "prune:0.4"};
        assertEquals(Map.copyOf(TrialWorker.changes(trial(TrialKind.BASELINE, "uniform", null, uniform), engine)
                .changes()), Map.of(SORTED.get(0), CompressionSpec.prune(0.4), SORTED.get(1), CompressionSpec.prune(0.4),
                SORTED.get(2), CompressionSpec.prune(0.4), SORTED.get(3), CompressionSpec.prune(0.4)));

        Trial global = TrialWorker.changes(trial(TrialKind.BASELINE, "global", null, uniform), engine);
        List<String> modelOrder = List.of("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj",
                "model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj");
        assertEquals(engine.globalMagnitudeSchedule(0.4, modelOrder), global.changes());
        double zeros = 0;
        double params = 0;
        for (String c : SORTED) {
            zeros += global.changes().get(c).sparsity() * engine.parameters(c);
            params += engine.parameters(c);
        }
        assertEquals(0.4, zeros / params, 1e-6, "the uniform schedule's overall sparsity, spread by one threshold");
    }

    @Test
    void anUnknownBaselineOrAGlobalOneOverNoPrunesIsRefusedNamingIt() {
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> TrialWorker.changes(
                trial(TrialKind.BASELINE, "median", null, "prune:0.4", "prune:0.4", "prune:0.4", "prune:0.4"), engine));
        assertTrue(unknown.getMessage().contains("unknown baseline 'median'"), unknown.getMessage());
        IllegalArgumentException int8 = assertThrows(IllegalArgumentException.class, () -> TrialWorker.changes(
                trial(TrialKind.BASELINE, "global", null, "prune:0.4", "int8_rowwise", "prune:0.4", "prune:0.4"),
                engine));
        assertTrue(int8.getMessage().contains("must prune linear components"), int8.getMessage());
    }
}
