#!/usr/bin/env bash
# Packs what a GPU run of this project needs into .gpu/ (git-ignored): ../shared/gpu/pack.sh's Java runtime, jars,
# JNI and scripts, plus the shared golden files (../shared does not travel to the GPU machine). The tiny model travels
# too when DTM_GPU_TINY=1, with the held-out text (2.6 MB: with the broker's jars packed, everything together exceeds the
# 64 MiB a run carries); DTM_GPU_TESTS=1 adds the engine's test classes and JUnit's console launcher (`bench.sh tests`).
# Run from the project root after `mvn -B install -DskipTests`; then, through the device tool, carrying .gpu:
#   source .gpu/setup.sh && bash gpu-workers/gpu/bench.sh 1b      (or 7b, scale)
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
SHARED=${DTM_SHARED:-$ROOT/../shared}
DIRS=("$@"); [ ${#DIRS[@]} -gt 0 ] || DIRS=(cli/target/lib cli/target)
if [ "${DTM_GPU_TESTS:-0}" = 1 ]; then
  # the engine's test classes and JUnit's console launcher, for `bench.sh tests`
  T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
  mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.13.4 -DoutputDirectory="$T"
  jar cf "$T/dtm-engine-tests.jar" -C gpu-workers/engine/target/test-classes .
  DIRS+=("$T")
fi
"$SHARED/gpu/pack.sh" "${DIRS[@]}"
mkdir -p .gpu/shared/models
cp -r "$SHARED/golden" .gpu/shared/
if [ "${DTM_GPU_TINY:-0}" = 1 ]; then
  cp -r "$SHARED/models/tiny-random-llama" .gpu/shared/models/ && cp -r "$SHARED/data" .gpu/shared/
fi
chmod -R u+w .gpu/shared
du -sh .gpu
