# shellcheck shell=bash source-path=SCRIPTDIR
# RabbitMQ (already running on 127.0.0.1:5672, guest/guest) plus its
# management HTTP API on 127.0.0.1:15672, which the rabbitmq and celery
# probe tests read, and an AMQPS listener on 127.0.0.1:5671 for the amqps
# tests. The plugin ships with the package and is enabled offline.
#
# The AMQPS listener presents the server certificate of the machine's test
# CA (test_ca in lib.sh). RabbitMQ runs as the rabbitmq user, which cannot
# enter a private home directory, so it reads copies of the CA, certificate
# and key from /etc/rabbitmq/axum-watch-test-certs/. The TLS settings are
# added to /etc/rabbitmq/rabbitmq.conf only when absent (they stay: they are
# the machine's configuration, not a process of this run).
#
# RabbitMQ is restarted only when the management API or the TLS listener
# (checked with a real handshake against the test CA) does not answer, so a
# second run changes nothing. A RabbitMQ that ran before this script is left
# running after such a restart (it is the machine's own); one that did not
# run at all is started here and stopped on exit.
# Exports AXUM_WATCH_RABBITMQ_URL, AXUM_WATCH_RABBITMQ_MANAGEMENT_URL,
# AXUM_WATCH_AMQPS_URL and AXUM_WATCH_AMQPS_CA.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
service_once rabbitmq || return 0

RABBITMQ_AMQP_PORT=5672
RABBITMQ_AMQPS_PORT=5671
RABBITMQ_MGMT_PORT=15672
rabbitmq_certs="$AXUM_WATCH_TEST_CERTS"
rabbitmq_server_certs=/etc/rabbitmq/axum-watch-test-certs
rabbitmq_conf=/etc/rabbitmq/rabbitmq.conf

rabbitmq_api_up() {
  curl -fsS -m 3 -u guest:guest "http://127.0.0.1:$RABBITMQ_MGMT_PORT/api/overview" >/dev/null 2>&1
}
# A complete TLS handshake whose certificate chains to the test CA and names localhost.
rabbitmq_tls_up() {
  timeout 5 openssl s_client -connect "127.0.0.1:$RABBITMQ_AMQPS_PORT" -servername localhost \
    -CAfile "$rabbitmq_certs/ca.crt" -verify_return_error -verify_hostname localhost \
    </dev/null >/dev/null 2>&1
}
rabbitmq_all_up() {
  port_open "$RABBITMQ_AMQP_PORT" && rabbitmq_api_up && rabbitmq_tls_up
}

# The copies RabbitMQ reads, refreshed only when they differ.
rabbitmq_install_certs() {
  mkdir -p "$rabbitmq_server_certs"
  local f
  for f in ca.crt server.crt server.key; do
    cmp -s "$rabbitmq_certs/$f" "$rabbitmq_server_certs/$f" || cp "$rabbitmq_certs/$f" "$rabbitmq_server_certs/$f"
  done
  chown -R rabbitmq:rabbitmq "$rabbitmq_server_certs" 2>/dev/null || true
  chmod 755 "$rabbitmq_server_certs"
  chmod 644 "$rabbitmq_server_certs"/ca.crt "$rabbitmq_server_certs"/server.crt
  chmod 640 "$rabbitmq_server_certs"/server.key
}

# Appends `key = value` unless the key is already set.
rabbitmq_conf_set() {
  grep -q "^$1[[:space:]]*=" "$rabbitmq_conf" 2>/dev/null || printf '%s = %s\n' "$1" "$2" >>"$rabbitmq_conf"
}

rabbitmq_configure() {
  command -v rabbitmq-server >/dev/null 2>&1 || { echo "rabbitmq-server is not installed" >&2; exit 1; }
  rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
  if [ ! -w "$rabbitmq_conf" ]; then
    echo "rabbitmq: $rabbitmq_conf is not writable; cannot add the management and TLS listeners" >&2
    return 0
  fi
  # Keep the API and the TLS listener on loopback like the AMQP listener.
  if ! grep -q '^management\.tcp\.' "$rabbitmq_conf"; then
    printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "$RABBITMQ_MGMT_PORT" >>"$rabbitmq_conf"
  fi
  if ! grep -q '^listeners\.ssl\.' "$rabbitmq_conf"; then
    printf 'listeners.ssl.1 = 127.0.0.1:%s\n' "$RABBITMQ_AMQPS_PORT" >>"$rabbitmq_conf"
  fi
  rabbitmq_conf_set ssl_options.cacertfile "$rabbitmq_server_certs/ca.crt"
  rabbitmq_conf_set ssl_options.certfile "$rabbitmq_server_certs/server.crt"
  rabbitmq_conf_set ssl_options.keyfile "$rabbitmq_server_certs/server.key"
  rabbitmq_conf_set ssl_options.verify verify_none
  rabbitmq_conf_set ssl_options.fail_if_no_peer_cert false
}

rabbitmq_restart() {
  if port_open "$RABBITMQ_AMQP_PORT"; then
    timeout 60 rabbitmqctl stop >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do port_open "$RABBITMQ_AMQP_PORT" || break; sleep 1; done
  fi
  rabbitmq-server -detached >/dev/null 2>&1 || true
  if [ "$rabbitmq_was_running" -eq 0 ]; then
    STOPS+=("rabbitmqctl stop")
    echo "  started RabbitMQ (it did not run before); stopped on exit"
  else
    echo "  RabbitMQ ran before this script: left running after the restart"
  fi
  for _ in $(seq 1 90); do
    rabbitmq_all_up && break
    sleep 1
  done
  port_open "$RABBITMQ_AMQP_PORT" || { echo "rabbitmq: AMQP did not come up on 127.0.0.1:$RABBITMQ_AMQP_PORT within 90 s" >&2; exit 1; }
  rabbitmq_api_up || { echo "rabbitmq: the management API did not come up on 127.0.0.1:$RABBITMQ_MGMT_PORT within 90 s" >&2; exit 1; }
  rabbitmq_tls_up || {
    echo "rabbitmq: no TLS handshake with a certificate from $rabbitmq_certs/ca.crt on 127.0.0.1:$RABBITMQ_AMQPS_PORT within 90 s (see $rabbitmq_conf)" >&2
    exit 1
  }
}

log "rabbitmq on 127.0.0.1:$RABBITMQ_AMQP_PORT (amqps on $RABBITMQ_AMQPS_PORT), management API on 127.0.0.1:$RABBITMQ_MGMT_PORT"
test_ca
# tests/probes_rabbitmq.rs falls back to test-certs/rabbitmq/ca.crt when
# AXUM_WATCH_AMQPS_CA is unset (the directory of an earlier, separate CA).
mkdir -p "$rabbitmq_certs/rabbitmq"
ln -sfn ../ca.crt "$rabbitmq_certs/rabbitmq/ca.crt"
rabbitmq_was_running=0
port_open "$RABBITMQ_AMQP_PORT" && rabbitmq_was_running=1
if rabbitmq_all_up; then
  echo "  RabbitMQ, its management API and AMQPS answer (it ran before this script: left running)"
else
  rabbitmq_install_certs
  rabbitmq_configure
  log "rabbitmq: restarting to enable the management API and the TLS listener"
  rabbitmq_restart
fi
export AXUM_WATCH_RABBITMQ_URL="${AXUM_WATCH_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:$RABBITMQ_AMQP_PORT/%2f}"
export AXUM_WATCH_RABBITMQ_MANAGEMENT_URL="${AXUM_WATCH_RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:$RABBITMQ_MGMT_PORT}"
export AXUM_WATCH_AMQPS_URL="${AXUM_WATCH_AMQPS_URL:-amqps://guest:guest@localhost:$RABBITMQ_AMQPS_PORT/%2f}"
export AXUM_WATCH_AMQPS_CA="${AXUM_WATCH_AMQPS_CA:-$rabbitmq_certs/ca.crt}"
