# shellcheck shell=bash source-path=SCRIPTDIR
# A Kafka-protocol broker for the kafka probe tests: Tansu with in-memory
# storage on 127.0.0.1:$KAFKA_PORT, started here and stopped by PID on exit
# (a broker already listening there is reused and left running). The binary
# comes from scripts/install-tansu, which builds it once per machine outside
# the repository; scripts/test starts that build in the background at its
# beginning, so here it is usually only waited for.
# Exports AXUM_WATCH_KAFKA_BOOTSTRAP.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_PORT=9092

log "kafka protocol (tansu) on 127.0.0.1:$KAFKA_PORT"
if port_open "$KAFKA_PORT"; then
  echo "  something listens on 127.0.0.1:$KAFKA_PORT already (not started by this run: left running)"
else
  kafka_started=$(date +%s)
  kafka_tansu=$("$(dirname "${BASH_SOURCE[0]}")/../install-tansu" 2> >(tee -a "$SERVICE_LOGS/tansu-install.log" >&2)) || {
    echo "kafka: building tansu failed; see $SERVICE_LOGS/tansu-install.log" >&2
    exit 1
  }
  echo "  tansu binary $kafka_tansu (waited $(($(date +%s) - kafka_started)) s for it)"
  spawn tansu "$kafka_tansu" broker \
    --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine memory://tansu/
  wait_until 30 port_open "$KAFKA_PORT" || {
    echo "tansu did not listen on 127.0.0.1:$KAFKA_PORT within 30 s; see $SERVICE_LOGS/tansu.log" >&2
    exit 1
  }
  unset kafka_started kafka_tansu
fi
export AXUM_WATCH_KAFKA_BOOTSTRAP="${AXUM_WATCH_KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"
