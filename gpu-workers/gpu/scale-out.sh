#!/usr/bin/env bash
# Scale-out through the consumer group: the same single-round sweep with 1, then 2, ... workers, each owning one device,
# broker + registry + aggregator on the host's CPUs; then `dtm bench` fast on one device for the same trials, the
# baseline the pipeline's overhead is measured against.
#
# On a multi-GPU machine, from the project root, after `source .gpu/setup.sh` (pack the local stack too, so the
# broker's jars travel: DTM_GPU_DROP=pytorch-native-cpu gpu-workers/gpu/pack.sh cli/target/lib cli/target/lib-local cli/target):
#   bash gpu-workers/gpu/scale-out.sh
# Anywhere else (CPU workers, small model), e.g.:
#   MODEL=models/brown-llama-8m DEVICES="cpu cpu" DTYPE=float32 PROMPTS=cli/src/main/resources/io/dtm/cli/demo-prompts.txt \
#     COMPONENTS='model\.layers\.[0-1]\..*' SHARD=16 bash gpu-workers/gpu/scale-out.sh
#
# Environment: MODEL (default /tmp/tl, made as a random TinyLlama-1.1B shape if missing), PROMPTS (default the 256
# prompts beside this script), TOKENS (64), COMPONENTS (every linear component), SHARD (prompts per shard, 64),
# DEVICES (one per worker, default "gpu:0 gpu:1"), DTYPE (float16), DTM (the launcher, default dtm), COMMIT_MS (the
# workers' --commit-interval-ms, default theirs). The embedded
# broker creates the pipeline's topics (4 partitions: at most 4 workers busy at once). Logs go to $OUT (or
# /tmp/dtm-out); the last lines are the table.
set -uo pipefail
OUT=${OUT:-/tmp/dtm-out}
mkdir -p "$OUT"
DTM=${DTM:-dtm}
MODEL=${MODEL:-/tmp/tl}
PROMPTS=${PROMPTS:-gpu-workers/gpu/prompts-256.txt}
TOKENS=${TOKENS:-64}
COMPONENTS=${COMPONENTS:-.*}
SHARD=${SHARD:-64}
DEVICES=(${DEVICES:-gpu:0 gpu:1})
DTYPE=${DTYPE:-float16}
KAFKA=127.0.0.1:19092
REGISTRY=http://127.0.0.1:18081
API=http://127.0.0.1:17070
CONN=(--bootstrap-servers $KAFKA --registry-url $REGISTRY)
MODEL=$(realpath -m "$MODEL")
PIDS=()
trap 'kill ${PIDS[@]} 2>/dev/null; wait 2>/dev/null' EXIT

[ -d "$MODEL" ] || python3 .gpu/make_random_llama.py "$MODEL" models/brown-llama-8m tinyllama-1.1b || exit 1

wait_for() { # wait_for FILE PATTERN SECONDS
  for _ in $(seq 1 $(($3 * 5))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
  echo "timed out waiting for '$2' in $1" >&2; tail -20 "$1" >&2; return 1
}

rm -rf /tmp/dtm-scale-broker /tmp/dtm-scale-state
$DTM broker --data-dir /tmp/dtm-scale-broker --port 19092 --registry-port 18081 > "$OUT/broker.log" 2>&1 &
PIDS+=($!)
wait_for "$OUT/broker.log" "registry" 60 || exit 1
$DTM aggregator "${CONN[@]}" --http-port 17070 --state-dir /tmp/dtm-scale-state > "$OUT/aggregator.log" 2>&1 &
PIDS+=($!)
wait_for "$OUT/aggregator.log" "RUNNING\|running\|listening" 120 || exit 1

WORKERS=()
start_workers() { # start_workers N: one worker per device, the first N devices
  WORKERS=()
  for i in $(seq 0 $(($1 - 1))); do
    $DTM worker "${CONN[@]}" --device "${DEVICES[$i]}" --dtype "$DTYPE" --model-root "$(dirname "$MODEL")" \
      --worker-id "w$i-of-$1" ${COMMIT_MS:+--commit-interval-ms $COMMIT_MS} > "$OUT/worker-$i-of-$1.log" 2>&1 &
    WORKERS+=($!)
    PIDS+=($!)
  done
}
stop_workers() {
  kill "${WORKERS[@]}" 2>/dev/null
  wait "${WORKERS[@]}" 2>/dev/null
}

# sweep ID REGEX: publishes a single-round sweep (every matching component at prune 0.5, ranked, nothing committed)
# and waits until the aggregator has decided it; prints the seconds it took
# (from the commit of its trials, the time the publisher logs, to the decision; the CLI's JVM start does not count)
sweep() {
  $DTM sweep start "${CONN[@]}" --sweep-id "$1" --model "$MODEL" --model-name "$(basename "$MODEL")" \
    --prompts "$PROMPTS" --tokens "$TOKENS" --components "$2" --prune-step 0.5 --rounds 1 --commit 0 \
    --shard-size "$SHARD" > "$OUT/sweep-$1.log" 2>&1 || { tail -5 "$OUT/sweep-$1.log" >&2; return 1; }
  local published=$(sed -n 's/^\([0-9:.]*\) .*published sweep.*/\1/p' "$OUT/sweep-$1.log" | head -1)
  local t0=$(date -d "$(date +%F) $published" +%s.%N)
  until curl -sf "$API/sweeps/$1/schedule" | grep -q '"finished" *: *true'; do sleep 0.1; done
  awk -v a="$(date +%s.%N)" -v b="$t0" "BEGIN {printf \"%.1f\", a - b}"
}

# Each worker count gets a warm pool: its workers start, then a warm-up sweep (layer 0's components) makes each one
# load the model and prepare the prompt shards it meets; base continuations are computed once per prompt shard and
# shared through dtm.baselines. The measured sweep then shows what adding workers gives a long-running pool; the
# warm-up's time (JVM start, model load, reference passes) is printed beside it.
declare -A WALL WARM
for n in $(seq 1 ${#DEVICES[@]}); do
  start_workers "$n"
  WARM[$n]=$(sweep "warm-$n" 'model\.layers\.0\..*') || exit 1
  FROM=()
  for i in $(seq 0 $((n - 1))); do FROM[$i]=$(($(wc -l < "$OUT/worker-$i-of-$n.log") + 1)); done
  WALL[$n]=$(sweep "scale-$n" "$COMPONENTS") || exit 1
  stop_workers
  for i in $(seq 0 $((n - 1))); do
    measured=$(tail -n +"${FROM[$i]}" "$OUT/worker-$i-of-$n.log")
    sum() { sed -n "s/.*$1 in \([0-9]*\) ms.*/\1/p" <<< "$measured" | awk '{s += $1} END {print s + 0}'; }
    echo "workers=$n worker $i (${DEVICES[$i]}): $(grep -c 'scoring' <<< "$measured") trial shards in" \
      "$(grep -c 'shards (scored' <<< "$measured") transactions: $(sum scored) ms scoring, $(sum committed) ms committing"
  done
  echo "workers=$n warm-up ${WARM[$n]} s, sweep wall time ${WALL[$n]} s"
done

$DTM bench --device "${DEVICES[0]}" --dtype "$DTYPE" --model "$MODEL" --prompts "$PROMPTS" --tokens "$TOKENS" \
  --components "$COMPONENTS" --methods fast > "$OUT/bench.log" 2>&1
tail -3 "$OUT/bench.log"
SETUP=$(sed -n 's/.* in \([0-9.]*\) s$/\1/p' "$OUT/bench.log" | head -1)
FAST=$(sed -n 's/^bench: fast=\([0-9.]*\).*/\1/p' "$OUT/bench.log")
echo "scale-out table (sweep wall time from publish to decision; speed-up against 1 worker):"
for n in $(seq 1 ${#DEVICES[@]}); do
  echo "  workers=$n warm-up=${WARM[$n]} s wall=${WALL[$n]} s speedup=$(awk -v a="${WALL[1]}" -v b="${WALL[$n]}" "BEGIN {printf \"%.2f\", a / b}")"
done
echo "  engine alone on ${DEVICES[0]}: set-up $SETUP s + fast $FAST s; pipeline overhead with 1 worker:" \
  "$(awk -v w="${WALL[1]}" -v f="$FAST" "BEGIN {printf \"%.1f\", 100 * (w - f) / f}")% (warm worker against fast alone)"
