package io.dtm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.dtm.schemas.CompressionSpec;
import io.dtm.schemas.TextScore;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Recomputes a golden file (dtm-spec "Golden files") with the engine and compares what the file expects. Two formats:
 * FDT files (prompts + cases: token ids, base greedy continuations and every case's per-prompt FDT/SDT; a case names
 * its compressions as {@code kind}/{@code sparsity}/{@code components} or as a {@code schedule} of component →
 * compression text), and text files ({@code window}, {@code texts}, cases of {@code schedule} with perplexity, KL and
 * top-1 agreement; a relative perplexity error above {@link #PERPLEXITY_TOLERANCE} is a mismatch).
 *
 * <p>Near-ties are not mismatches: a prompt whose base model disagrees with itself (base_teacher_forced_fdt &lt; N) is
 * not compared, and a case disagreement on a prompt where the compressed model's top-1/top-2 logit margin falls below
 * {@link #NEAR_TIE} (in the file, up to the first divergence; or in this engine, at any scored position, since SDT
 * counts every position) is reported as a near-tie. Every other difference is a mismatch.
 */
public final class GoldenCheck {

    /** Logit margin below which float32 rounding differences between implementations may flip a greedy choice. */
    public static final double NEAR_TIE = 1e-4;

    /** Relative perplexity error up to which a text case agrees. */
    public static final double PERPLEXITY_TOLERANCE = 1e-4;

    /** What was checked ({@code inputs} prompts, or texts) and how it went. */
    public record Summary(int inputs, String unit, int cases, int mismatches, int nearTies) {
        @Override
        public String toString() {
            return "golden: " + inputs + " " + unit + ", " + cases + " cases, " + mismatches + " mismatches, "
                    + nearTies + " near-ties";
        }
    }

    private final DivergenceEngine engine;
    private final PrintStream log;

    public GoldenCheck(DivergenceEngine engine, PrintStream log) {
        this.engine = engine;
        this.log = log;
    }

    /** Checks {@code golden} (either format) and, if {@code out} is not null, writes the recomputed file there. */
    public Summary run(Path golden, Path out) throws IOException {
        ObjectMapper json = new ObjectMapper();
        JsonNode in = json.readTree(golden.toFile());
        return in.has("window") ? text(json, golden, in, out) : fdt(json, golden, in, out);
    }

    private Summary fdt(ObjectMapper json, Path golden, JsonNode in, Path out) throws IOException {
        List<String> prompts = new ArrayList<>();
        in.path("prompts").forEach(p -> prompts.add(p.asText()));
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException(golden + ": no prompts");
        }
        int n = in.path("n_generated").asInt(64);
        int mismatches = 0;
        int nearTies = 0;

        List<int[]> ids = new ArrayList<>();
        for (int p = 0; p < prompts.size(); p++) {
            int[] mine = engine.encode(prompts.get(p));
            JsonNode expected = in.path("prompt_ids").path(p);
            if (!expected.isMissingNode() && !Arrays.equals(mine, ints(expected))) {
                mismatches++;
                log.printf("mismatch: prompt %d token ids %s, expected %s%n", p, Arrays.toString(mine), expected);
            }
            // Score on the file's ids when given, so a tokenizer difference is reported once, not in every case.
            ids.add(expected.isMissingNode() ? mine : ints(expected));
        }

        int[] selfConsistent = new int[prompts.size()];
        Arrays.fill(selfConsistent, n);
        JsonNode tf = in.path("base_teacher_forced_fdt");
        for (int p = 0; p < prompts.size() && tf.isArray(); p++) {
            selfConsistent[p] = tf.path(p).asInt(n);
        }
        boolean[] compare = new boolean[prompts.size()];
        for (int p = 0; p < prompts.size(); p++) {
            compare[p] = selfConsistent[p] == n;
            if (!compare[p]) {
                nearTies++;
                log.printf("near-tie: prompt %d (base teacher-forced fdt %d < %d) is not compared%n", p, selfConsistent[p], n);
            }
        }

        int[][] generated = engine.generate(ids, n, Trial.none(), DivergenceEngine.Progress.NONE);
        JsonNode expectedBase = in.path("base_continuations");
        for (int p = 0; p < prompts.size() && expectedBase.isArray(); p++) {
            if (compare[p] && !Arrays.equals(generated[p], ints(expectedBase.path(p)))) {
                mismatches++;
                log.printf("mismatch: prompt %d base continuation differs%n", p);
            }
        }
        // The file's cases were scored on the file's continuations y, and Wanda's input norms sum over those sequences:
        // where the base model is at a near-tie with itself (its own y differs by rounding), take the file's y; every
        // other prompt's y was just checked equal, or reported.
        int[][] continuations = generated.clone();
        for (int p = 0; p < prompts.size() && expectedBase.isArray(); p++) {
            if (!compare[p] && expectedBase.path(p).size() == n) {
                continuations[p] = ints(expectedBase.path(p));
            }
        }
        try (PromptSet set = engine.prepare(ids, continuations, DivergenceEngine.Progress.NONE)) {
            ObjectNode result = json.createObjectNode();
            result.put("model", in.path("model").asText(engine.modelDir().getFileName().toString()));
            result.put("n_generated", n);
            result.put("dtype_compute", engine.dtypeName());
            result.set("prompts", in.path("prompts").deepCopy());
            result.set("prompt_ids", json.valueToTree(ids));
            result.set("base_continuations", json.valueToTree(set.continuations()));
            result.set("base_teacher_forced_fdt", json.valueToTree(set.baseSelfConsistency()));
            float[][] baseMargins = engine.scoreWithMargins(set, Trial.none()).margins();
            result.set("base_min_logit_margin", json.valueToTree(Arrays.stream(baseMargins).map(GoldenCheck::min).toArray()));
            result.set("base_logit_margins", json.valueToTree(baseMargins));
            ArrayNode cases = result.putArray("cases");

            int caseIndex = 0;
            for (JsonNode c : in.path("cases")) {
                Trial trial = trial(c);
                DivergenceEngine.DetailedScore detailed = engine.scoreWithMargins(set, trial);
                TrialScore score = detailed.score();
                float[][] margins = detailed.margins();
                // the scores reported come from the full LM head; the fast path (which proves most rows without it)
                // must agree bit for bit, or it is a bug of its own
                TrialScore fast = engine.score(set, trial);
                for (int p = 0; p < prompts.size(); p++) {
                    if (fast.fdt()[p] != score.fdt()[p] || fast.sdt()[p] != score.sdt()[p]) {
                        mismatches++;
                        log.println(String.format("mismatch: case %d (%s) prompt %d: fast path fdt %d sdt %s, full head"
                                + " fdt %d sdt %s", caseIndex, trial, p, fast.fdt()[p], fast.sdt()[p], score.fdt()[p],
                                score.sdt()[p]));
                    }
                }
                ObjectNode oc = cases.addObject();
                if (c.has("schedule")) {
                    oc.set("schedule", c.path("schedule").deepCopy());
                } else {
                    oc.put("kind", c.path("kind").asText());
                    if (c.has("sparsity")) {
                        oc.put("sparsity", c.path("sparsity").asDouble());
                    }
                    oc.set("components", c.path("components").deepCopy());
                }
                oc.set("fdt", json.valueToTree(score.fdt()));
                oc.set("sdt", json.valueToTree(score.sdt()));
                float[] atDecision = new float[prompts.size()];
                for (int p = 0; p < atDecision.length; p++) {
                    // the decisions up to and including the first divergence, as the file defines it
                    atDecision[p] = min(Arrays.copyOf(margins[p], Math.min(score.fdt()[p] + 1, n)));
                }
                oc.set("min_margin_at_decision", json.valueToTree(atDecision));
                JsonNode fdt = c.path("fdt");
                JsonNode sdt = c.path("sdt");
                for (int p = 0; p < prompts.size() && fdt.isArray(); p++) {
                    if (!compare[p]) {
                        continue;
                    }
                    boolean same = score.fdt()[p] == fdt.path(p).asInt() && score.sdt()[p] == sdt.path(p).asDouble();
                    if (same) {
                        continue;
                    }
                    double fileMargin = c.path("min_margin_at_decision").path(p).asDouble(Double.POSITIVE_INFINITY);
                    double ownMargin = min(margins[p]);
                    String what = String.format("case %d (%s %s) prompt %d: fdt %d sdt %s, expected fdt %d sdt %s"
                                    + " (margin at decision in file %.2e, smallest margin here %.2e)",
                            caseIndex, c.has("schedule") ? "schedule" : c.path("kind").asText(), trial, p,
                            score.fdt()[p], score.sdt()[p],
                            fdt.path(p).asInt(), sdt.path(p).asText(), fileMargin, ownMargin);
                    if (Math.min(fileMargin, ownMargin) < NEAR_TIE) {
                        nearTies++;
                        log.println("near-tie: " + what);
                    } else {
                        mismatches++;
                        log.println("mismatch: " + what);
                    }
                }
                caseIndex++;
            }
            if (out != null) {
                json.writerWithDefaultPrettyPrinter().writeValue(out.toFile(), result);
            }
            return new Summary(prompts.size(), "prompts", caseIndex, mismatches, nearTies);
        }
    }

    /**
     * A text golden file: the texts cut into windows as the file's {@code window} says, each case's schedule scored
     * for perplexity, KL and top-1 agreement. The window and token counts must match the file's (else the texts were
     * tokenized or cut differently); the perplexity must agree to {@link #PERPLEXITY_TOLERANCE}; KL and top-1
     * agreement are reported beside it.
     */
    private Summary text(ObjectMapper json, Path golden, JsonNode in, Path out) throws IOException {
        List<String> texts = new ArrayList<>();
        in.path("texts").forEach(t -> texts.add(t.asText()));
        if (texts.isEmpty()) {
            throw new IllegalArgumentException(golden + ": no texts");
        }
        int window = in.path("window").asInt();
        int mismatches = 0;
        try (TextSet set = engine.prepareText(texts, window)) {
            if (in.has("chunks") && in.path("chunks").asInt() != set.windows()) {
                mismatches++;
                log.printf("mismatch: %d windows, expected %d%n", set.windows(), in.path("chunks").asInt());
            }
            if (in.has("tokens") && in.path("tokens").asLong() != set.predicted()) {
                mismatches++;
                log.printf("mismatch: %d predicted tokens, expected %d%n", set.predicted(), in.path("tokens").asLong());
            }
            ObjectNode result = json.createObjectNode();
            result.put("model", in.path("model").asText(engine.modelDir().getFileName().toString()));
            result.put("window", window);
            result.put("dtype_compute", engine.dtypeName());
            result.set("texts", in.path("texts").deepCopy());
            result.put("chunks", set.windows());
            result.put("tokens", set.predicted());
            ArrayNode cases = result.putArray("cases");
            int caseIndex = 0;
            double worstPerplexity = 0;
            double worstKl = 0;
            double worstTop1 = 0;
            for (JsonNode c : in.path("cases")) {
                Trial trial = trial(c);
                TextScore score = engine.scoreText(set, trial, null);
                ObjectNode oc = cases.addObject();
                oc.set("schedule", c.path("schedule").deepCopy());
                oc.put("nll_sum", score.nllSum());
                oc.put("perplexity", score.perplexity());
                oc.put("kl_mean", score.klMean());
                oc.put("top1_agreement", score.top1Agreement());
                if (c.has("perplexity")) {
                    double expected = c.path("perplexity").asDouble();
                    double relative = Math.abs(score.perplexity() - expected) / expected;
                    worstPerplexity = Math.max(worstPerplexity, relative);
                    if (!(relative <= PERPLEXITY_TOLERANCE)) {
                        mismatches++;
                        log.printf("mismatch: case %d (%s): perplexity %.6f, expected %.6f (relative error %.2e)%n",
                                caseIndex, trial, score.perplexity(), expected, relative);
                    }
                }
                worstKl = Math.max(worstKl, Math.abs(score.klMean() - c.path("kl_mean").asDouble(score.klMean())));
                worstTop1 = Math.max(worstTop1,
                        Math.abs(score.top1Agreement() - c.path("top1_agreement").asDouble(score.top1Agreement())));
                caseIndex++;
            }
            log.printf("text: %d windows of at most %d tokens, %d predicted; largest differences from the file:"
                    + " perplexity %.2e (relative), kl_mean %.2e, top1_agreement %.2e%n", set.windows(), window,
                    set.predicted(), worstPerplexity, worstKl, worstTop1);
            if (out != null) {
                json.writerWithDefaultPrettyPrinter().writeValue(out.toFile(), result);
            }
            return new Summary(texts.size(), "texts", caseIndex, mismatches, 0);
        }
    }

    /**
     * A golden case as a trial: a {@code schedule} (component → compression text), or {@code kind} prune (with
     * {@code sparsity}) or int8_rowwise on every listed component.
     */
    static Trial trial(JsonNode c) {
        if (c.has("schedule")) {
            Trial t = Trial.none();
            for (java.util.Iterator<java.util.Map.Entry<String, JsonNode>> it = c.path("schedule").fields(); it.hasNext(); ) {
                java.util.Map.Entry<String, JsonNode> e = it.next();
                t = t.plus(e.getKey(), CompressionSpec.parse(e.getValue().asText()));
            }
            return t;
        }
        String kind = c.path("kind").asText();
        CompressionSpec spec = switch (kind) {
            case "prune" -> CompressionSpec.prune(c.path("sparsity").asDouble(Double.NaN));
            case "int8_rowwise" -> CompressionSpec.int8();
            default -> throw new IllegalArgumentException("golden case has unknown kind '" + kind + "'");
        };
        Trial t = Trial.none();
        for (JsonNode component : c.path("components")) {
            t = t.plus(component.asText(), spec);
        }
        return t;
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.path(i).asInt();
        }
        return out;
    }

    private static float min(float[] values) {
        float m = Float.POSITIVE_INFINITY;
        for (float v : values) {
            m = Math.min(m, v);
        }
        return m;
    }
}
