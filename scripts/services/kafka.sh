# shellcheck shell=bash source-path=SCRIPTDIR
# Kafka-protocol brokers for the kafka probe tests, both Tansu (built once per
# machine outside the repository by scripts/install-tansu; scripts/test starts
# that build in the background at its beginning, so here it is usually only
# waited for):
#
# - 127.0.0.1:$KAFKA_PORT: plaintext, no login, in-memory storage;
# - 127.0.0.1:$KAFKA_SASL_PORT: SASL required (Tansu offers SCRAM-SHA-256 and
#   SCRAM-SHA-512, not PLAIN), sqlite storage in a directory made for this run,
#   with the user $KAFKA_SASL_USER for both mechanisms. Tansu only accepts a
#   user from a client that is already logged in, so a first broker without
#   login on the same database creates it (`tansu user create`) and is stopped
#   before the SASL one starts.
#
# Tansu 0.6 has no TLS listener (its --cert/--key options are not wired to the
# listener), so the TLS tests put a TLS-terminating proxy of their own, with
# the test CA's server certificate (test_ca in lib.sh), in front of these.
#
# Brokers already listening are reused and left running; the ones started
# here are stopped by PID on exit.
# Exports AXUM_WATCH_KAFKA_BOOTSTRAP, AXUM_WATCH_KAFKA_SASL_BOOTSTRAP,
# AXUM_WATCH_KAFKA_SASL_USER and AXUM_WATCH_KAFKA_SASL_PASSWORD.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_PORT=9092
KAFKA_SASL_PORT=9094
KAFKA_SASL_SETUP_PORT=9095
KAFKA_SASL_USER=axum-watch
# A test-only credential of a broker on loopback.
KAFKA_SASL_PASSWORD=axum-watch-test-password

kafka_tansu() {
  [ -n "${kafka_bin:-}" ] && return 0
  local started
  started=$(date +%s)
  kafka_bin=$("$(dirname "${BASH_SOURCE[0]}")/../install-tansu" 2> >(tee -a "$SERVICE_LOGS/tansu-install.log" >&2)) || {
    echo "kafka: building tansu failed; see $SERVICE_LOGS/tansu-install.log" >&2
    exit 1
  }
  echo "  tansu binary $kafka_bin (waited $(($(date +%s) - started)) s for it)"
}

# kafka_broker NAME PORT DIR STORAGE [tansu broker options...]
kafka_broker() {
  local name=$1 port=$2 dir=$3 storage=$4
  shift 4
  spawn "$name" env -C "$dir" "$kafka_bin" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "$storage" "$@"
  wait_until 30 port_open "$port" || {
    echo "tansu ($name) did not listen on 127.0.0.1:$port within 30 s; see $SERVICE_LOGS/$name.log" >&2
    exit 1
  }
}

log "kafka protocol (tansu) on 127.0.0.1:$KAFKA_PORT"
if port_open "$KAFKA_PORT"; then
  echo "  something listens on 127.0.0.1:$KAFKA_PORT already (not started by this run: left running)"
else
  kafka_tansu
  kafka_broker tansu "$KAFKA_PORT" "$PWD" memory://tansu/
fi

log "kafka protocol with SASL/SCRAM (tansu, sqlite storage) on 127.0.0.1:$KAFKA_SASL_PORT"
if port_open "$KAFKA_SASL_PORT"; then
  echo "  something listens on 127.0.0.1:$KAFKA_SASL_PORT already (not started by this run: left running)"
else
  kafka_tansu
  if port_open "$KAFKA_SASL_SETUP_PORT"; then
    echo "kafka: 127.0.0.1:$KAFKA_SASL_SETUP_PORT, where the SASL broker's users are made, is taken; free it" >&2
    exit 1
  fi
  kafka_dir=$(mktemp -d "${TMPDIR:-/tmp}/axum-watch-tansu-sasl.XXXXXX")
  STOPS+=("rm -rf '$kafka_dir'")
  kafka_broker tansu-sasl-setup "$KAFKA_SASL_SETUP_PORT" "$kafka_dir" sqlite://tansu.db
  for kafka_mechanism in scram256 scram512; do
    "$kafka_bin" user create --broker "tcp://127.0.0.1:$KAFKA_SASL_SETUP_PORT" \
      "$KAFKA_SASL_USER" "$KAFKA_SASL_PASSWORD" --mechanism "$kafka_mechanism" \
      >>"$SERVICE_LOGS/tansu-sasl-setup.log" 2>&1 || {
      echo "kafka: creating the $kafka_mechanism user failed; see $SERVICE_LOGS/tansu-sasl-setup.log" >&2
      exit 1
    }
  done
  # The setup broker is the newest entry of PIDS: stop it and forget it.
  kafka_setup_pid=${PIDS[${#PIDS[@]} - 1]}
  kill "$kafka_setup_pid"
  wait_until 10 eval '! kill -0 "$kafka_setup_pid" 2>/dev/null' || kill -9 "$kafka_setup_pid"
  wait "$kafka_setup_pid" 2>/dev/null || true
  unset 'PIDS[${#PIDS[@]}-1]'
  echo "  made user $KAFKA_SASL_USER (SCRAM-SHA-256, SCRAM-SHA-512); setup broker stopped"
  kafka_broker tansu-sasl "$KAFKA_SASL_PORT" "$kafka_dir" sqlite://tansu.db --authentication
  unset kafka_dir kafka_mechanism kafka_setup_pid
fi
test_ca
export AXUM_WATCH_KAFKA_BOOTSTRAP="${AXUM_WATCH_KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"
export AXUM_WATCH_KAFKA_SASL_BOOTSTRAP="${AXUM_WATCH_KAFKA_SASL_BOOTSTRAP:-127.0.0.1:$KAFKA_SASL_PORT}"
export AXUM_WATCH_KAFKA_SASL_USER="${AXUM_WATCH_KAFKA_SASL_USER:-$KAFKA_SASL_USER}"
export AXUM_WATCH_KAFKA_SASL_PASSWORD="${AXUM_WATCH_KAFKA_SASL_PASSWORD:-$KAFKA_SASL_PASSWORD}"
