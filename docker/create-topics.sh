#!/bin/sh
# Creates the dtm pipeline topics on any Kafka cluster and checks the ones that already exist.
# Idempotent: safe to run on every `docker compose up` and against a production cluster.
#
# Runs with Kafka's own tools (the apache/kafka image has them in /opt/kafka/bin):
#   docker run --rm -e BOOTSTRAP_SERVERS=kafka-1.example.com:9093 \
#     -e REPLICATION_FACTOR=3 -e COMMAND_CONFIG=/etc/dtm/client.properties \
#     -v "$PWD/docker/create-topics.sh:/create-topics.sh:ro" \
#     -v "/etc/dtm/client.properties:/etc/dtm/client.properties:ro" \
#     apache/kafka:4.1.2 sh /create-topics.sh
#
# Settings (environment):
#   BOOTSTRAP_SERVERS   required, host:port[,host:port]
#   COMMAND_CONFIG      optional .properties file for SASL/TLS (the same file the dtm services get
#                       with --client-config; kafka-topics.sh takes it as --command-config)
#   TRIALS_PARTITIONS   partitions of dtm.trials (default 32): the most GPU workers that can be busy
#                       at once; members of the worker group beyond this number stay idle
#   PARTITIONS          partitions of every other pipeline topic (default 8)
#   REPLICATION_FACTOR  default 1 (single broker); use 3 on a production cluster
#   RETENTION_MS        retention of the non-compacted topics dtm.trials, dtm.divergences and
#                       dtm.dead-letters (default 2592000000 = 30 days; -1 = keep forever). A trial
#                       left unconsumed for longer than this is deleted and its round never ends.
#   KAFKA_BIN           directory of kafka-topics.sh (default /opt/kafka/bin)
#   WAIT_SECONDS        how long to wait for the cluster to answer (default 120)
#
# Topic names and which are compacted: schemas/src/main/java/io/dtm/schemas/Topics.java.
set -eu

BOOTSTRAP_SERVERS="${BOOTSTRAP_SERVERS:?set BOOTSTRAP_SERVERS, e.g. broker:19092}"
COMMAND_CONFIG="${COMMAND_CONFIG:-}"
TRIALS_PARTITIONS="${TRIALS_PARTITIONS:-32}"
PARTITIONS="${PARTITIONS:-8}"
REPLICATION_FACTOR="${REPLICATION_FACTOR:-1}"
RETENTION_MS="${RETENTION_MS:-2592000000}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
WAIT_SECONDS="${WAIT_SECONDS:-120}"

log() { printf 'create-topics: %s\n' "$*" >&2; }

for n in "$TRIALS_PARTITIONS" "$PARTITIONS" "$REPLICATION_FACTOR" "$WAIT_SECONDS"; do
  case "$n" in
    '' | *[!0-9]*) log "expected a positive integer, got '$n'"; exit 2 ;;
  esac
done
case "$RETENTION_MS" in
  -1) ;;
  '' | *[!0-9]*) log "RETENTION_MS must be -1 or a number of milliseconds, got '$RETENTION_MS'"; exit 2 ;;
esac
if [ -n "$COMMAND_CONFIG" ] && [ ! -r "$COMMAND_CONFIG" ]; then
  log "COMMAND_CONFIG $COMMAND_CONFIG is not a readable file"
  exit 2
fi

kafka_topics() {
  if [ -n "$COMMAND_CONFIG" ]; then
    "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" --command-config "$COMMAND_CONFIG" "$@"
  else
    "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" "$@"
  fi
}

# Wait until the cluster answers (compose also waits for the broker's health check).
waited=0
until kafka_topics --list > /dev/null 2>&1; do
  if [ "$waited" -ge "$WAIT_SECONDS" ]; then
    log "Kafka at $BOOTSTRAP_SERVERS did not answer within ${WAIT_SECONDS}s; last error:"
    kafka_topics --list > /dev/null || true
    exit 1
  fi
  sleep 5
  waited=$((waited + 5))
done

failed=0

# ensure TOPIC PARTITIONS POLICY: create TOPIC if missing, then check what the cluster holds.
ensure() {
  topic="$1" partitions="$2" policy="$3"
  if [ "$policy" = compact ]; then
    kafka_topics --create --if-not-exists --topic "$topic" --partitions "$partitions" \
      --replication-factor "$REPLICATION_FACTOR" --config cleanup.policy=compact
  else
    kafka_topics --create --if-not-exists --topic "$topic" --partitions "$partitions" \
      --replication-factor "$REPLICATION_FACTOR" --config cleanup.policy=delete \
      --config retention.ms="$RETENTION_MS"
  fi

  description="$(kafka_topics --describe --topic "$topic")"
  count="$(printf '%s\n' "$description" | sed -n 's/.*PartitionCount: *\([0-9][0-9]*\).*/\1/p' | head -n 1)"
  configs="$(printf '%s\n' "$description" | sed -n 's/.*Configs: *//p' | head -n 1)"
  if [ -z "$count" ]; then
    log "cannot read the partition count of $topic from: $description"
    failed=1
    return 0
  fi
  # A topic that Kafka auto-created (auto.create.topics.enable) has no cleanup.policy override.
  case "$policy:$configs" in
    compact:*cleanup.policy=compact*) ;;
    compact:*)
      log "ERROR: $topic exists but is not compacted (configs: '${configs}'); it must have cleanup.policy=compact."
      log "       Was it auto-created? Fix: kafka-configs.sh --alter --entity-type topics --entity-name $topic --add-config cleanup.policy=compact"
      failed=1 ;;
    delete:*cleanup.policy=compact*)
      log "ERROR: $topic is compacted but must be cleanup.policy=delete (configs: '${configs}')"
      failed=1 ;;
  esac
  if [ "$count" -lt "$partitions" ]; then
    if [ "$topic" = dtm.trials ]; then
      log "WARNING: dtm.trials has $count partitions, fewer than TRIALS_PARTITIONS=$partitions: at most $count workers can be busy."
      log "         Adding partitions to dtm.trials is safe (its keys carry no order), preferably between sweeps:"
      log "         kafka-topics.sh --alter --topic dtm.trials --partitions $partitions"
    else
      log "note: $topic has $count partitions (wanted $partitions); left as it is."
    fi
  fi
  log "$topic: $count partitions, ${configs:-no overrides}"
}

ensure dtm.sweeps "$PARTITIONS" compact
ensure dtm.trials "$TRIALS_PARTITIONS" delete
ensure dtm.divergences "$PARTITIONS" delete
ensure dtm.baselines "$PARTITIONS" compact
ensure dtm.rankings "$PARTITIONS" compact
ensure dtm.schedule "$PARTITIONS" compact
ensure dtm.dead-letters "$PARTITIONS" delete

if [ "$failed" -ne 0 ]; then
  log "some topics are misconfigured (see above)"
  exit 1
fi
log "pipeline topics ready on $BOOTSTRAP_SERVERS"
