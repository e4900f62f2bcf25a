#!/usr/bin/env bash
# Packs what a GPU run of this project needs into .gpu/ (git-ignored): ../shared/gpu/pack.sh's Java runtime, jars,
# JNI and scripts, plus the shared golden files (../shared does not travel to the GPU machine). The tiny model travels
# too when DTM_GPU_TINY=1 (2.5 MB: with the broker's jars packed, everything together exceeds the 64 MiB a run carries).
# Run from the project root after `mvn -B install -DskipTests`; then, through the device tool, carrying .gpu:
#   source .gpu/setup.sh && bash gpu-workers/gpu/bench.sh 1b      (or 7b, scale)
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
SHARED=${DTM_SHARED:-$ROOT/../shared}
"$SHARED/gpu/pack.sh" "$@"
mkdir -p .gpu/shared/models
cp -r "$SHARED/golden" .gpu/shared/
if [ "${DTM_GPU_TINY:-0}" = 1 ]; then cp -r "$SHARED/models/tiny-random-llama" .gpu/shared/models/; fi
chmod -R u+w .gpu/shared
du -sh .gpu
