#!/usr/bin/env bash
# GPU measurements, side by side with the Hugging Face peer in the same call (see README "Measured here").
# On the GPU machine, from the project root, after `source .gpu/setup.sh` (gpu-workers/gpu/pack.sh packs .gpu):
#   bash gpu-workers/gpu/bench.sh 1b     exactness (float32 goldens on the GPU), float16 agreement with transformers
#                                        (and transformers with itself), TinyLlama-1.1B shape: peer vs dtm bench,
#                                        154 trials at prune 0.5
#   bash gpu-workers/gpu/bench.sh 7b     Llama-2-7B shape: peer vs dtm bench (-Xmx4g; PEER=0: dtm alone)
#   bash gpu-workers/gpu/bench.sh 8b     Llama-3-8B shape: load and score with -Xmx4g
#   bash gpu-workers/gpu/bench.sh apply  a `dtm apply` checkpoint in transformers against dtm's prediction
#   bash gpu-workers/gpu/bench.sh scale  scale-out.sh on two GPUs, shards of 64 and of 256 prompts (COMMIT0=1: also one
#                                        transaction a shard); pack the broker too: DTM_GPU_DROP="pytorch-native-cpu log4j-core"
#   bash gpu-workers/gpu/bench.sh trace  PyTorch's profiler over 8 fast 1.1B trials, summarized per op
#   bash gpu-workers/gpu/bench.sh tests  the engine's compressor and scoring tests on the GPU
# Logs go to $OUT (the device tool brings them back) or /tmp/dtm-out. Each dtm run's peak GPU memory is sampled with
# nvidia-smi (PyTorch's caching allocator included: what the process holds, not what its tensors need).
set -uo pipefail
MODE=${1:?usage: bench.sh 1b|7b|8b|apply|scale|trace|tests}
OUT=${OUT:-/tmp/dtm-out}
mkdir -p "$OUT"
S=.gpu/shared
P=cli/src/main/resources/io/dtm/cli/demo-prompts.txt
export PYTHONUNBUFFERED=1

# peak NAME CMD...: runs CMD, then prints the most GPU memory used meanwhile
peak() {
  local name=$1; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 200 > "$OUT/mem-$name.log" 2>/dev/null &
  local sampler=$!
  local t0=$SECONDS
  "$@"
  local rc=$?
  kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
  echo "== $name: rc $rc, $((SECONDS - t0)) s, peak GPU memory $(sort -n "$OUT/mem-$name.log" | tail -1) MiB"
  return $rc
}

case "$MODE" in
1b)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "== exactness: float32 on the GPU against the transformers goldens"
  if [ -d $S/models/tiny-random-llama ]; then
    dtm golden --device gpu --model $S/models/tiny-random-llama --golden $S/golden/tiny-random-llama.shared.json | tail -1
  fi
  dtm golden --device gpu --model models/brown-llama-8m --golden $S/golden/brown-llama-8m.shared.json | tail -1
  dtm golden --device gpu --model models/brown-llama-8m --golden $S/golden/brown-llama-8m.text.shared.json | tail -1
  echo "== float16 agreement with transformers (56 components at prune 0.5, shared prompts)"
  dtm golden --device gpu --dtype float16 --model models/brown-llama-8m --golden gpu-workers/gpu/brown-llama-8m.sweep56.json \
    --out "$OUT/fp16-sweep56.json" | tail -1
  python3 .gpu/fp16_agreement.py "$OUT/fp16-sweep56.json" models/brown-llama-8m
  python3 gpu-workers/gpu/fp16_noise.py "$OUT/fp16-sweep56.json" models/brown-llama-8m 2>&1 | grep -v Loading
  echo "== TinyLlama-1.1B shape"
  python3 .gpu/make_random_llama.py /tmp/tl models/brown-llama-8m tinyllama-1.1b
  peak peer-1b python3 .gpu/peer_hf_sweep.py --model /tmp/tl --prompts $P --tokens 64 2>&1 | grep -v Warning
  peak dtm-1b dtm bench --device gpu --dtype float16 --model /tmp/tl --prompts $P --methods fast,full --profile 8
  peak dtm-1b-naive dtm bench --device gpu --dtype float16 --model /tmp/tl --prompts $P --methods fast,naive \
    --components 'model\.layers\.(0|7|14|21)\.mlp\.down_proj'
  ;;
7b)
  echo "== Llama-2-7B shape"
  python3 .gpu/make_random_llama.py /tmp/l7 models/brown-llama-8m llama-2-7b
  [ "${PEER:-1}" = 0 ] || peak peer-7b python3 .gpu/peer_hf_sweep.py --model /tmp/l7 --prompts $P --tokens 64 2>&1 | grep -v Warning
  peak dtm-7b env DTM_JAVA_OPTS=-Xmx4g dtm bench --device gpu --dtype float16 --model /tmp/l7 --prompts $P \
    --methods fast --profile 8
  rm -rf /tmp/l7
  ;;
8b)
  echo "== Llama-3-8B shape: load and score with -Xmx4g"
  python3 .gpu/make_random_llama.py /tmp/l8 models/brown-llama-8m llama-3-8b
  peak dtm-8b env DTM_JAVA_OPTS=-Xmx4g dtm bench --device gpu --dtype float16 --model /tmp/l8 --prompts $P \
    --methods fast --profile 4 --components 'model\.layers\.(0|10|20|31)\..*'
  rm -rf /tmp/l8
  ;;
apply)
  echo "== dtm apply: the checkpoint loaded by transformers generates what dtm predicts for the schedule"
  S=gpu-workers/gpu/apply-schedule.json
  dtm eval --device gpu --model models/brown-llama-8m --prompts $P --schedule $S --continuations "$OUT/cont.json" | tail -2
  dtm apply --device gpu --model models/brown-llama-8m --schedule $S --out /tmp/applied --dtype float32
  python3 gpu-workers/gpu/apply_check.py /tmp/applied "$OUT/cont.json" models/brown-llama-8m $S 2>&1 | grep -v Loading
  rm -rf /tmp/applied
  ;;
scale)
  echo "== scale-out through the consumer group (TinyLlama-1.1B shape, 256 prompts x 64 tokens, shards of 64)"
  nvidia-smi --query-gpu=index,name --format=csv,noheader
  python3 .gpu/make_random_llama.py /tmp/tl models/brown-llama-8m tinyllama-1.1b
  for shard in 64 256; do
    echo "-- shards of $shard prompts, the shards of a second per transaction"
    OUT="/tmp/scale-$shard" SHARD=$shard bash gpu-workers/gpu/scale-out.sh 2>&1 | tail -9
  done
  if [ -n "${COMMIT0:-}" ]; then
    echo "-- shards of 64, one transaction per shard (--commit-interval-ms 0, the workers before batching)"
    OUT=/tmp/scale-commit0 COMMIT_MS=0 bash gpu-workers/gpu/scale-out.sh 2>&1 | tail -9
  fi
  tar -C /tmp -cJf "$OUT/scale-logs.txz" $(cd /tmp && ls -d scale-*)   # one file: a run brings back only a few
  ;;
trace)
  echo "== where a fast trial's device time goes (TinyLlama-1.1B shape, fp16, 64 prompts x 64 tokens)"
  [ -d /tmp/tl ] || python3 .gpu/make_random_llama.py /tmp/tl models/brown-llama-8m tinyllama-1.1b
  dtm bench --device gpu --dtype float16 --model /tmp/tl --prompts $P --methods fast --profile 8 \
    --trace "$OUT/trace-1b.json" | tail -4
  python3 gpu-workers/gpu/trace_summary.py "$OUT/trace-1b.json" 30 8
  xz -f "$OUT/trace-1b.json"
  ;;
tests)
  echo "== the device-agnostic engine tests on the GPU: compressors bit for bit against the Java reference, scoring and"
  echo "   the cache budget (pack with DTM_GPU_TESTS=1 DTM_GPU_TINY=1)"
  [ -e $S/models/brown-llama-8m ] || ln -s "$PWD/models/brown-llama-8m" $S/models/   # the repository's demo model
  java -Dai.djl.offline=true -Ddtm.test.device=gpu -Ddtm.shared=$S -cp "/tmp/dtm/jars/*" \
    org.junit.platform.console.ConsoleLauncher execute --disable-banner --disable-ansi-colors --details=tree \
    --select-class io.dtm.engine.CompressorTest --select-class io.dtm.engine.DivergenceEngineTest > "$OUT/tests.log" 2>&1
  grep -E '✔|✘|tests (successful|failed)' "$OUT/tests.log"
  grep -A3 -E '^  JUnit Jupiter:' "$OUT/tests.log" | grep -E 'JUnit Jupiter|=>' | head -40
  ;;
*)
  echo "unknown mode $MODE" >&2; exit 2 ;;
esac
