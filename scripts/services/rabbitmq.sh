# RabbitMQ (already running on 127.0.0.1:5672, guest/guest) plus its
# management HTTP API on 127.0.0.1:15672, which the rabbitmq and celery
# probe tests read, and an AMQPS listener on 127.0.0.1:5671 for the amqps
# tests. The plugin ships with the package and is enabled offline.
#
# The AMQPS listener presents a certificate for localhost / 127.0.0.1 signed
# by a test CA that this file makes once with openssl under
# ${XDG_CACHE_HOME:-$HOME/.cache}/axum-watch/test-certs/rabbitmq/. RabbitMQ
# runs as the rabbitmq user, which cannot enter a private home directory, so
# it reads copies of the CA, certificate and key from
# /etc/rabbitmq/axum-watch-test-certs/. The TLS settings are added to
# /etc/rabbitmq/rabbitmq.conf only when absent.
#
# RabbitMQ is restarted only when the management API or the TLS listener
# (checked with a real handshake against the test CA) does not answer, so a
# second run changes nothing.
# Exports AXUM_WATCH_RABBITMQ_URL, AXUM_WATCH_RABBITMQ_MANAGEMENT_URL,
# AXUM_WATCH_AMQPS_URL and AXUM_WATCH_AMQPS_CA.

RABBITMQ_AMQP_PORT=5672
RABBITMQ_AMQPS_PORT=5671
RABBITMQ_MGMT_PORT=15672
rabbitmq_certs="${XDG_CACHE_HOME:-$HOME/.cache}/axum-watch/test-certs/rabbitmq"
rabbitmq_server_certs=/etc/rabbitmq/axum-watch-test-certs
rabbitmq_conf=/etc/rabbitmq/rabbitmq.conf

rabbitmq_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
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
  rabbitmq_port_open "$RABBITMQ_AMQP_PORT" && rabbitmq_api_up && rabbitmq_tls_up
}

rabbitmq_make_certs() {
  [ -s "$rabbitmq_certs/server.crt" ] && [ -s "$rabbitmq_certs/server.key" ] && [ -s "$rabbitmq_certs/ca.crt" ] && return 0
  log "rabbitmq: making a test CA and a certificate for localhost / 127.0.0.1 in $rabbitmq_certs"
  mkdir -p "$rabbitmq_certs"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=axum-watch rabbitmq test CA" \
    -keyout "$rabbitmq_certs/ca.key" -out "$rabbitmq_certs/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$rabbitmq_certs/server.key" -out "$rabbitmq_certs/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$rabbitmq_certs/server.ext"
  openssl x509 -req -in "$rabbitmq_certs/server.csr" -CA "$rabbitmq_certs/ca.crt" -CAkey "$rabbitmq_certs/ca.key" \
    -CAcreateserial -days 3650 -extfile "$rabbitmq_certs/server.ext" -out "$rabbitmq_certs/server.crt" 2>/dev/null
  chmod 755 "$rabbitmq_certs"
  chmod 644 "$rabbitmq_certs"/ca.crt "$rabbitmq_certs"/server.crt "$rabbitmq_certs"/server.key
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
  if rabbitmq_port_open "$RABBITMQ_AMQP_PORT"; then
    timeout 60 rabbitmqctl stop >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do rabbitmq_port_open "$RABBITMQ_AMQP_PORT" || break; sleep 1; done
  fi
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 90); do
    rabbitmq_all_up && break
    sleep 1
  done
  rabbitmq_port_open "$RABBITMQ_AMQP_PORT" || { echo "rabbitmq: AMQP did not come up on 127.0.0.1:$RABBITMQ_AMQP_PORT within 90 s" >&2; exit 1; }
  rabbitmq_api_up || { echo "rabbitmq: the management API did not come up on 127.0.0.1:$RABBITMQ_MGMT_PORT within 90 s" >&2; exit 1; }
  rabbitmq_tls_up || {
    echo "rabbitmq: no TLS handshake with a certificate from $rabbitmq_certs/ca.crt on 127.0.0.1:$RABBITMQ_AMQPS_PORT within 90 s (see $rabbitmq_conf)" >&2
    exit 1
  }
}

log "rabbitmq on 127.0.0.1:$RABBITMQ_AMQP_PORT (amqps on $RABBITMQ_AMQPS_PORT), management API on 127.0.0.1:$RABBITMQ_MGMT_PORT"
rabbitmq_make_certs
if ! rabbitmq_all_up; then
  rabbitmq_install_certs
  rabbitmq_configure
  log "rabbitmq: restarting to enable the management API and the TLS listener"
  rabbitmq_restart
fi
export AXUM_WATCH_RABBITMQ_URL="${AXUM_WATCH_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:$RABBITMQ_AMQP_PORT/%2f}"
export AXUM_WATCH_RABBITMQ_MANAGEMENT_URL="${AXUM_WATCH_RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:$RABBITMQ_MGMT_PORT}"
export AXUM_WATCH_AMQPS_URL="${AXUM_WATCH_AMQPS_URL:-amqps://guest:guest@localhost:$RABBITMQ_AMQPS_PORT/%2f}"
export AXUM_WATCH_AMQPS_CA="${AXUM_WATCH_AMQPS_CA:-$rabbitmq_certs/ca.crt}"
