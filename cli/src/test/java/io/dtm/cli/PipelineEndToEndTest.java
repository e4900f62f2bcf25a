package io.dtm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.dtm.aggregator.AggregatorApp;
import io.dtm.aggregator.RankingView;
import io.dtm.aggregator.ScheduleView;
import io.dtm.planner.StopReason;
import io.dtm.local.EmbeddedCluster;
import io.dtm.planner.TrialPlanner;
import io.dtm.producers.SweepPublisher;
import io.dtm.schemas.DivergenceSummary;
import io.dtm.schemas.Topics;
import io.dtm.schemas.avro.BaseContinuation;
import io.dtm.schemas.avro.DivergenceResult;
import io.dtm.schemas.avro.RankingUpdate;
import io.dtm.schemas.avro.ScheduleEntry;
import io.dtm.schemas.avro.ScheduleStep;
import io.dtm.schemas.avro.SweepRequest;
import io.dtm.schemas.registry.SchemaRegistryClient;
import io.dtm.schemas.serde.AvroSerdes;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The whole pipeline on a real broker: embedded KRaft node + registry, the aggregator, two workers in threads and a
 * sweep from {@link SweepPublisher}, on the tiny model. Every number the pipeline publishes is checked against the
 * divergence engine run directly on the same prompts.
 */
class PipelineEndToEndTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aSweepRunsEndToEndAndMatchesTheEngine() throws Exception {
        SweepRequest sweep = E2e.sweep("e2e-sweep");
        Path stateDir = Files.createTempDirectory("dtm-e2e-streams");
        // resources close in reverse order: workers, aggregator, engine, then the broker
        try (EmbeddedCluster cluster = EmbeddedCluster.start(null);
             E2e.Reference reference = new E2e.Reference(sweep.getPrompts());
             AggregatorApp aggregator = E2e.startAggregator(cluster, E2e.registry(cluster), "dtm-aggregator-e2e", stateDir);
             E2e.RunningWorker w0 = new E2e.RunningWorker(cluster, E2e.registry(cluster), "dtm-workers", "e2e-worker-0");
             E2e.RunningWorker w1 = new E2e.RunningWorker(cluster, E2e.registry(cluster), "dtm-workers", "e2e-worker-1")) {
            SchemaRegistryClient registry = E2e.registry(cluster);

            SweepPublisher.Summary published = new SweepPublisher(E2e.clientProps(cluster), registry).publish(sweep);
            assertEquals(6, published.trials(), "6 candidates in round 0");
            assertEquals(12, published.shards(), "2 shards per trial");

            ScheduleView schedule = E2e.awaitFinished(aggregator, sweep.getSweepId(), E2e.TIMEOUT);
            assertTrue(w0.alive() && w1.alive(), "both workers still run");
            assertEquals(2, schedule.steps().size(), schedule.toString());
            assertEquals(StopReason.ROUNDS.code(), schedule.stopReason());
            assertTrue(schedule.finished());

            // --- round 0: every entry is the engine's number, in ranking order; the best one is committed
            RankingView round0 = E2e.ranking(aggregator, sweep.getSweepId(), 0);
            assertEquals(6, round0.trialsTotal());
            assertEquals(6, round0.trialsDone());
            assertTrue(round0.decided());
            assertEquals(6, round0.entries().size());
            Set<String> seen = new HashSet<>();
            for (RankingView.Entry e : round0.entries()) {
                assertTrue(e.complete(), e.toString());
                assertEquals("prune:0.5", e.compression());
                assertTrue(seen.add(e.component()), "one entry per component");
                assertMatches(reference.candidate(e.component(), e.compression()), e);
            }
            assertEquals(sweep.getComponents().stream().map(c -> c.getName()).collect(Collectors.toSet()), seen);
            assertBestFirst(round0.entries());
            RankingView.Entry best = round0.entries().get(0);
            ScheduleView.Step step0 = schedule.steps().get(0);
            assertEquals(List.of(new ScheduleView.Entry(best.component(), best.compression())), step0.committed(),
                    "round 0 commits its best-ranked candidate");
            assertEquals(step0.committed(), step0.schedule());

            // --- round 1: candidates scored on top of round 0's schedule
            RankingView round1 = E2e.ranking(aggregator, sweep.getSweepId(), 1);
            assertTrue(round1.decided());
            assertEquals(6, round1.entries().size(), "5 new components at 0.5 plus the committed one at 1.0");
            assertEquals("prune:1.0", find(round1, best.component()).compression());
            for (RankingView.Entry e : round1.entries()) {
                assertMatches(reference.score(step0.schedule(), e.component(), e.compression()), e);
            }
            assertBestFirst(round1.entries());
            ScheduleView.Step step1 = schedule.steps().get(1);
            RankingView.Entry best1 = round1.entries().get(0);
            assertEquals(List.of(new ScheduleView.Entry(best1.component(), best1.compression())), step1.committed());
            assertEquals(TrialPlanner.apply(List.of(new ScheduleEntry(best.component(), best.compression())),
                            List.of(new ScheduleEntry(best1.component(), best1.compression()))).stream()
                            .map(x -> new ScheduleView.Entry(x.getComponent(), x.getCompression())).toList(),
                    step1.schedule());
            assertEquals(step1.schedule(), schedule.schedule());

            // --- each step's measured FDTM/SDTM is the engine's for its cumulative schedule
            long params = sweep.getComponents().stream().mapToLong(c -> c.getParams()).sum();
            for (ScheduleView.Step step : schedule.steps()) {
                DivergenceSummary measured = reference.score(step.schedule(), null, null);
                assertEquals(measured.fdtm(), step.fdtm(), "FDTM of the schedule after round " + step.round());
                assertEquals(measured.sdtm(), step.sdtm(), "SDTM of the schedule after round " + step.round());
                double zeroed = 0;
                for (ScheduleView.Entry e : step.schedule()) {
                    long p = sweep.getComponents().stream().filter(c -> c.getName().equals(e.component()))
                            .findFirst().orElseThrow().getParams();
                    zeroed += Double.parseDouble(e.compression().substring("prune:".length())) * p;
                }
                assertEquals(zeroed / params, step.overallSparsity(), 1e-12);
            }
            assertFalse(schedule.steps().get(0).last());
            assertTrue(schedule.steps().get(1).last());

            // --- the topics hold what the query API answers
            String bootstrap = cluster.bootstrapServers();
            Map<String, RankingUpdate> rankings = E2e.latestByKey(E2e.readAll(bootstrap, Topics.RANKINGS.name(),
                    AvroSerdes.deserializer(RankingUpdate.class, registry)));
            assertEquals(Set.of("e2e-sweep/0", "e2e-sweep/1"), rankings.keySet());
            assertEquals(round0, E2e.view(rankings.get("e2e-sweep/0")));
            assertEquals(round1, E2e.view(rankings.get("e2e-sweep/1")));
            Map<String, ScheduleStep> steps = E2e.latestByKey(E2e.readAll(bootstrap, Topics.SCHEDULE.name(),
                    AvroSerdes.deserializer(ScheduleStep.class, registry)));
            assertEquals(Set.of("e2e-sweep/0", "e2e-sweep/1"), steps.keySet());
            assertEquals(step0, E2e.view(steps.get("e2e-sweep/0")));
            assertEquals(step1, E2e.view(steps.get("e2e-sweep/1")));

            // --- every trial shard has exactly one result value, from one of the two workers
            List<Map.Entry<String, DivergenceResult>> results = E2e.readAll(bootstrap, Topics.DIVERGENCES.name(),
                    AvroSerdes.deserializer(DivergenceResult.class, registry));
            Map<String, Set<List<Integer>>> fdtsByKey = new LinkedHashMap<>();
            results.forEach(r -> fdtsByKey.computeIfAbsent(r.getKey(), k -> new HashSet<>()).add(r.getValue().getFdt()));
            assertEquals((6 + 1 + 6 + 1) * 2, fdtsByKey.size(), "2 rounds of 6 candidates + 2 measures, 2 shards each");
            fdtsByKey.forEach((key, values) -> assertEquals(1, values.size(), "one value for " + key));
            Set<String> workers = results.stream().map(r -> r.getValue().getWorkerId()).collect(Collectors.toSet());
            assertTrue(Set.of("e2e-worker-0", "e2e-worker-1").containsAll(workers), workers.toString());

            // --- base continuations: computed once per shard and shared, equal to the engine's
            assertBaselines(bootstrap, registry, sweep, reference);

            // --- the REST API over real HTTP answers the same
            String base = "http://127.0.0.1:" + aggregator.restAddress().port() + "/sweeps/" + sweep.getSweepId();
            HttpResponse<String> rankingJson = get(base + "/ranking?round=0");
            assertEquals(200, rankingJson.statusCode(), rankingJson.body());
            assertEquals(round0, JSON.readValue(rankingJson.body(), RankingView.class));
            JsonNode tree = JSON.readTree(rankingJson.body());
            assertEquals(best.component(), tree.path("entries").path(0).path("component").textValue());
            assertEquals(best.fdtm(), tree.path("entries").path(0).path("fdtm").doubleValue());
            HttpResponse<String> scheduleJson = get(base + "/schedule");
            assertEquals(200, scheduleJson.statusCode(), scheduleJson.body());
            assertEquals(schedule, JSON.readValue(scheduleJson.body(), ScheduleView.class));
            assertEquals(404, get("http://127.0.0.1:" + aggregator.restAddress().port()
                    + "/sweeps/no-such-sweep/schedule").statusCode());
            assertEquals(404, get(base + "/ranking?round=7").statusCode());
        } finally {
            E2e.deleteTree(stateDir);
        }
    }

    private static void assertBaselines(String bootstrap, SchemaRegistryClient registry, SweepRequest sweep,
                                        E2e.Reference reference) {
        List<Map.Entry<String, BaseContinuation>> baselines = E2e.readAll(bootstrap, Topics.BASELINES.name(),
                AvroSerdes.deserializer(BaseContinuation.class, registry));
        Map<String, List<BaseContinuation>> byKey = new LinkedHashMap<>();
        baselines.forEach(b -> byKey.computeIfAbsent(b.getKey(), k -> new ArrayList<>()).add(b.getValue()));
        String set = sweep.getPromptSetId();
        assertEquals(Set.of(Topics.shardKey(set, 0), Topics.shardKey(set, 1)), byKey.keySet(),
                "one baseline key per shard of the one prompt set");
        for (Map.Entry<String, List<BaseContinuation>> e : byKey.entrySet()) {
            List<BaseContinuation> values = e.getValue();
            // Two workers may both compute a shard before either sees the other's record; the copies must
            // agree on everything but who computed them.
            assertEquals(1, values.stream().map(v -> BaseContinuation.newBuilder(v).setWorkerId("").build())
                            .distinct().count(),
                    "every copy of " + e.getKey() + " is identical apart from its worker (" + values.size() + " copies)");
            BaseContinuation b = values.get(0);
            int offset = b.getShard() * E2e.SHARD_SIZE;
            assertEquals(E2e.TOKENS, b.getTokens());
            assertEquals(sweep.getModel(), b.getModel());
            for (int i = 0; i < b.getContinuations().size(); i++) {
                int p = offset + i;
                assertEquals(boxed(reference.set.promptIds().get(p)), b.getPromptIds().get(i), "prompt ids of " + p);
                assertEquals(boxed(reference.set.continuations()[p]), b.getContinuations().get(i),
                        "base continuation of prompt " + p);
                assertEquals(boxed(reference.set.references()[p]), b.getReferences().get(i),
                        "reference tokens of prompt " + p);
            }
            assertEquals(E2e.SHARD_SIZE, b.getContinuations().size());
        }
        System.out.printf("baselines: %d records for %d shard keys%n", baselines.size(), byKey.size());
    }

    private static List<Integer> boxed(int[] values) {
        return Arrays.stream(values).boxed().toList();
    }

    static void assertMatches(DivergenceSummary engine, RankingView.Entry e) {
        String what = e.component() + " " + e.compression();
        assertEquals(engine.fdtm(), e.fdtm(), "FDTM of " + what);
        assertEquals(engine.sdtm(), e.sdtm(), "SDTM of " + what);
        assertEquals(engine.fdtMedian(), e.fdtMedian(), "FDT median of " + what);
        assertEquals(engine.fdtP10(), e.fdtP10(), "FDT p10 of " + what);
        assertEquals(engine.shareAtN(), e.shareAtN(), "share at N of " + what);
        assertEquals(engine.prompts(), e.prompts(), "prompts of " + what);
    }

    /** FDTM descending, then SDTM ascending, then component name, then compression. */
    static void assertBestFirst(List<RankingView.Entry> entries) {
        Comparator<RankingView.Entry> order = Comparator.comparingDouble(RankingView.Entry::fdtm).reversed()
                .thenComparingDouble(RankingView.Entry::sdtm)
                .thenComparing(RankingView.Entry::component)
                .thenComparing(RankingView.Entry::compression);
        assertEquals(entries.stream().sorted(order).toList(), entries, "ranking order");
    }

    private static RankingView.Entry find(RankingView view, String component) {
        return view.entries().stream().filter(e -> e.component().equals(component)).findFirst().orElseThrow();
    }

    static HttpResponse<String> get(String url) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
