#!/bin/sh
# One dtm worker container per NVIDIA GPU of this host, all joining the same consumer group of a
# shared Kafka cluster. Run it on every GPU host; the group spreads dtm.trials partitions over all.
#
#   DTM_BOOTSTRAP_SERVERS=kafka-1.example.com:9093 DTM_REGISTRY_URL=https://registry.example.com \
#   DTM_CLIENT_CONFIG=/etc/dtm/client.properties DTM_MODELS_DIR=/srv/models \
#     sh docker/gpu-workers.sh start
#
# Commands:
#   check   run a 4-prompt engine smoke test on each GPU (--device gpu); fails if the engine cannot use it
#   start   check, then start (or replace) container dtm-worker-gpu<N> for each GPU N
#   stop    stop and remove them (each finishes or abandons its current trial; nothing is lost)
#   status  list them
#
# Environment:
#   DTM_BOOTSTRAP_SERVERS   required for start: Kafka bootstrap servers as the containers resolve them
#   DTM_REGISTRY_URL        required for start: schema registry URL
#   DTM_CLIENT_CONFIG       optional host path of a Kafka client .properties file (SASL/TLS), mounted
#                           read-only; must be readable by uid 10001
#   DTM_MODELS_DIR          host directory of the models, mounted read-only at /models (default /srv/models).
#                           Mount models at the same container path on every host: a sweep names its
#                           model by the absolute path `dtm sweep start` saw.
#   DTM_GPU_IMAGE           image (default dtm:gpu)
#   GPUS                    GPU indexes to use, e.g. "0 1 2 3" (default: every GPU nvidia-smi lists)
#   DTM_WORKER_GROUP        consumer group (default dtm-workers)
#   DTM_WORKER_DTYPE        float32 (default) or float16
#   DTM_WORKER_BATCH_SIZE   prompts per forward batch (default 64)
#   DTM_WORKER_CACHE_MB     layer-cache budget in MB (default 2048)
#   DTM_MAX_TRIAL_MINUTES   longest a trial shard may take before the group reassigns it (default 60)
#   DTM_WORKER_JAVA_OPTS    JDK_JAVA_OPTIONS for the JVM (default -XX:+ExitOnOutOfMemoryError)
#   DTM_DOCKER_ARGS         extra `docker run` arguments, e.g. "--network host" or "--add-host ..."
#   SKIP_CHECK=1            start without the smoke test
#   DRY_RUN=1               print the docker commands instead of running them
set -eu

IMAGE="${DTM_GPU_IMAGE:-dtm:gpu}"
MODELS_DIR="${DTM_MODELS_DIR:-/srv/models}"
GROUP="${DTM_WORKER_GROUP:-dtm-workers}"
DTYPE="${DTM_WORKER_DTYPE:-float32}"
BATCH_SIZE="${DTM_WORKER_BATCH_SIZE:-64}"
CACHE_MB="${DTM_WORKER_CACHE_MB:-2048}"
MAX_TRIAL_MINUTES="${DTM_MAX_TRIAL_MINUTES:-60}"
JAVA_OPTS="${DTM_WORKER_JAVA_OPTS:--XX:+ExitOnOutOfMemoryError}"
DOCKER_ARGS="${DTM_DOCKER_ARGS:-}"
NAME_PREFIX=dtm-worker-gpu

log() { printf 'gpu-workers: %s\n' "$*" >&2; }

run() {
  if [ "${DRY_RUN:-0}" = 1 ]; then
    printf '%s\n' "$*"
  else
    "$@"
  fi
}

# Like run, but a real command's output is discarded and its failure ignored.
run_quiet() {
  if [ "${DRY_RUN:-0}" = 1 ]; then
    printf '%s\n' "$*"
  else
    "$@" > /dev/null 2>&1 || true
  fi
}

gpus() {
  if [ -n "${GPUS:-}" ]; then
    printf '%s\n' "$GPUS" | tr -s ', ' '\n' | sed '/^$/d'
  elif command -v nvidia-smi > /dev/null 2>&1; then
    nvidia-smi --query-gpu=index --format=csv,noheader | tr -d ' '
  else
    log "nvidia-smi not found: set GPUS, e.g. GPUS=\"0 1\""
    exit 2
  fi
}

# A stable, unique worker id per GPU: it is also the producer's transactional.id, so a restarted
# container fences its previous incarnation, and two workers must never share one.
worker_id() {
  printf '%s-gpu%s' "$(hostname -s 2> /dev/null || hostname)" "$1"
}

check() {
  failed=0
  for gpu in $(gpus); do
    log "GPU $gpu: engine smoke test"
    # shellcheck disable=SC2086 # DOCKER_ARGS is a list of words on purpose
    if ! run docker run --rm --gpus "device=$gpu" $DOCKER_ARGS "$IMAGE" \
      eval --model /opt/dtm/models/brown-llama-8m --prompts /opt/dtm/share/smoke-prompts.txt \
      --component model.layers.0.mlp.up_proj --prune 0.5 --tokens 4 --device gpu --dtype "$DTYPE"; then
      log "GPU $gpu: FAILED (driver, --gpus support or image); no worker should run on it"
      failed=1
    fi
  done
  return "$failed"
}

start() {
  : "${DTM_BOOTSTRAP_SERVERS:?set DTM_BOOTSTRAP_SERVERS}"
  : "${DTM_REGISTRY_URL:?set DTM_REGISTRY_URL}"
  if [ ! -d "$MODELS_DIR" ]; then
    log "DTM_MODELS_DIR $MODELS_DIR is not a directory"
    exit 2
  fi
  client_mount=""
  client_arg=""
  if [ -n "${DTM_CLIENT_CONFIG:-}" ]; then
    if [ ! -f "$DTM_CLIENT_CONFIG" ]; then
      log "DTM_CLIENT_CONFIG $DTM_CLIENT_CONFIG is not a file"
      exit 2
    fi
    client_mount="--volume=$DTM_CLIENT_CONFIG:/etc/dtm/client.properties:ro"
    client_arg="--client-config=/etc/dtm/client.properties"
  fi
  if [ "${SKIP_CHECK:-0}" != 1 ]; then
    check
  fi
  for gpu in $(gpus); do
    name="$NAME_PREFIX$gpu"
    run_quiet docker rm -f "$name"
    # shellcheck disable=SC2086 # DOCKER_ARGS, client_mount and client_arg may be empty or several words
    run docker run -d --name "$name" --restart unless-stopped --gpus "device=$gpu" \
      --stop-timeout 45 --log-opt max-size=50m --log-opt max-file=5 \
      --env "JDK_JAVA_OPTIONS=$JAVA_OPTS" \
      --volume "$MODELS_DIR:/models:ro" $client_mount $DOCKER_ARGS \
      "$IMAGE" worker \
      --bootstrap-servers "$DTM_BOOTSTRAP_SERVERS" --registry-url "$DTM_REGISTRY_URL" $client_arg \
      --group "$GROUP" --worker-id "$(worker_id "$gpu")" --model-root /models \
      --device gpu --dtype "$DTYPE" --batch-size "$BATCH_SIZE" --cache-mb "$CACHE_MB" \
      --max-trial-minutes "$MAX_TRIAL_MINUTES"
    log "started $name (worker id $(worker_id "$gpu"), group $GROUP)"
  done
}

stop() {
  for gpu in $(gpus); do
    name="$NAME_PREFIX$gpu"
    run_quiet docker stop --time 45 "$name"
    run_quiet docker rm "$name"
    log "stopped $name"
  done
}

case "${1:-}" in
  check) check ;;
  start) start ;;
  stop) stop ;;
  status) run docker ps --all --filter "name=$NAME_PREFIX" --format '{{.Names}}\t{{.Status}}\t{{.Image}}' ;;
  *)
    sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
