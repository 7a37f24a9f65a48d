# shellcheck shell=bash source-path=SCRIPTDIR
# Helpers shared by the service files. Every scripts/services/*.sh sources
# this file itself, so one service also starts on its own, e.g.
#
#   bash -c '. scripts/services/lib.sh; trap services_stop EXIT; . scripts/services/redis.sh; ...'
#
# Sourcing it twice changes nothing. It defines:
#   log MESSAGE...        a log line (kept when the caller defined its own)
#   PIDS                  PIDs of the processes this run started
#   STOPS                 commands that stop the daemons this run started
#   services_stop         stops both, newest first (the caller's EXIT trap)
#   apt_install CMD:PKG.. installs the Debian package PKG when CMD is missing
#   port_open PORT        something accepts connections on 127.0.0.1:PORT
#   shown_url URL         URL with its password masked, for log lines
#   wait_until SECS CMD.. runs CMD every 0.2 s until it succeeds; fails after SECS
#   service_once NAME     true only the first time in a run, for the files
#                         that others source too: `service_once redis || return 0`
#   spawn NAME CMD...     runs CMD in the background, its output in
#                         $SERVICE_LOGS/NAME.log, and adds its PID to PIDS
#   test_ca               makes (once per machine) the test CA and the server
#                         and client certificates in $AXUM_WATCH_TEST_CERTS
#   AXUM_WATCH_CACHE      what is kept per machine between runs (virtualenvs,
#                         the test CA, the Tansu binary), outside the repository
#   SERVICE_LOGS          the service logs of this checkout (target/service-logs)
#
# Daemons that already ran before the run (the machine's PostgreSQL, MariaDB,
# Redis and RabbitMQ) are left running: only what this run started is stopped.

[ -n "${AXUM_WATCH_SERVICES_LIB:-}" ] && return 0
AXUM_WATCH_SERVICES_LIB=1

declare -F log >/dev/null || log() { printf '\n==> %s\n' "$*"; }

[ -n "${PIDS+set}" ] || PIDS=()
[ -n "${STOPS+set}" ] || STOPS=()

AXUM_WATCH_CACHE="${AXUM_WATCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/axum-watch}"
AXUM_WATCH_TEST_CERTS="${AXUM_WATCH_TEST_CERTS:-$AXUM_WATCH_CACHE/test-certs}"
SERVICE_LOGS="${SERVICE_LOGS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/service-logs}"
export AXUM_WATCH_CACHE AXUM_WATCH_TEST_CERTS
mkdir -p "$AXUM_WATCH_CACHE" "$SERVICE_LOGS"

# Stops what this run started: the commands in STOPS, then the PIDs (TERM,
# KILL after 10 s), newest first. Safe to call more than once.
services_stop() {
  local i pid
  for ((i = ${#STOPS[@]} - 1; i >= 0; i--)); do
    echo "  stopping: ${STOPS[i]}"
    eval "timeout 60 ${STOPS[i]}" >/dev/null 2>&1 || echo "  (stop command failed: ${STOPS[i]})"
  done
  STOPS=()
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null || true
  done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.2
  done
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  PIDS=()
}

# apt_install CMD:PKG... installs the packages whose command is missing,
# refreshing the package lists only when the first try fails.
apt_install() {
  local missing=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

shown_url() { printf '%s' "$1" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'; }

wait_until() {
  local tries=$(($1 * 5))
  shift
  for _ in $(seq 1 "$tries"); do
    "$@" && return 0
    sleep 0.2
  done
  "$@"
}

SERVICES_DONE=" "
service_once() {
  case $SERVICES_DONE in *" $1 "*) return 1 ;; esac
  SERVICES_DONE+="$1 "
}

spawn() {
  local name=$1
  shift
  "$@" >"$SERVICE_LOGS/$name.log" 2>&1 &
  PIDS+=("$!")
  echo "  started $name (pid $!, log $SERVICE_LOGS/$name.log); stopped on exit"
}

# The test CA, made once per machine and reused by every checkout and
# service: ca.crt / ca.key, server.crt / server.key (localhost, 127.0.0.1,
# ::1; serverAuth) and client.crt / client.key (CN axum-watch-test-client;
# clientAuth, for mutual TLS). A certificate is made again only when it is
# missing, does not chain to ca.crt or expires within 30 days. A lock keeps
# two checkouts from making it at the same time.
test_ca() {
  local dir=$AXUM_WATCH_TEST_CERTS
  mkdir -p "$dir"
  (
    flock 9
    cd "$dir" || exit 1
    if ! openssl x509 -in ca.crt -noout -checkend 2592000 >/dev/null 2>&1 || [ ! -s ca.key ]; then
      log "test CA: making a new CA in $dir"
      rm -f server.crt client.crt
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=axum-watch test CA" \
        -keyout ca.key -out ca.crt \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    fi
    test_ca_leaf server "/CN=localhost" \
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n'
    test_ca_leaf client "/CN=axum-watch-test-client" \
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'
    chmod 644 ca.crt server.crt client.crt
    chmod 600 ca.key server.key client.key
  ) 9>"$dir/.lock"
}

# test_ca_leaf NAME SUBJECT EXTENSIONS: NAME.crt / NAME.key signed by the CA
# (run inside the certificate directory).
test_ca_leaf() {
  if openssl verify -CAfile ca.crt "$1.crt" >/dev/null 2>&1 &&
    openssl x509 -in "$1.crt" -noout -checkend 2592000 >/dev/null 2>&1 && [ -s "$1.key" ]; then
    return 0
  fi
  log "test CA: making the $1 certificate in $PWD"
  # shellcheck disable=SC2059 # the extensions carry their own \n
  printf "$3" >"$1.ext"
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
