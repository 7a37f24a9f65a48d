# shellcheck shell=bash source-path=SCRIPTDIR
# TLS-only instances of PostgreSQL, Redis and MariaDB for the TLS tests
# (tests/tls_postgres.rs, tests/tls_redis.rs, tests/tls_mysql.rs), apart
# from the machine's own servers, which stay as they are: each one has its
# own port, data directory and socket on loopback, presents the server
# certificate of the test CA (test_ca in lib.sh: localhost, 127.0.0.1, ::1)
# and refuses plain text:
#
#   PostgreSQL  127.0.0.1:55433  ssl = on; pg_hba hostssl only (trust); database test
#   Redis       127.0.0.1:56380  --port 0 --tls-port; client certificates optional
#   Redis       127.0.0.1:56381  the same with --tls-auth-clients yes (mutual TLS)
#   MariaDB     127.0.0.1:53307  ssl_cert/ssl_key/ssl_ca, require_secure_transport;
#                                user axum (no password) on database test
#
# A second CA that signed nothing (other-ca.crt, made once beside the test
# CA) stands for "the wrong CA". Data directories are made afresh under
# ${TMPDIR:-/tmp} (initdb, mariadb-install-db; a few seconds each) and
# everything started here is stopped on exit. An instance that already
# answers on its port (another checkout's run) is reused and left running.
# Exports AXUM_WATCH_POSTGRES_TLS_URL, AXUM_WATCH_REDIS_TLS_URL,
# AXUM_WATCH_REDIS_MTLS_URL, AXUM_WATCH_MYSQL_TLS_URL, AXUM_WATCH_TLS_CA,
# AXUM_WATCH_TLS_OTHER_CA, AXUM_WATCH_TLS_CLIENT_CERT and
# AXUM_WATCH_TLS_CLIENT_KEY.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
service_once tls || return 0

TLS_PG_PORT=55433
TLS_REDIS_PORT=56380
TLS_REDIS_MTLS_PORT=56381
TLS_MARIADB_PORT=53307
tls_certs=$AXUM_WATCH_TEST_CERTS
tls_run=${TMPDIR:-/tmp}/axum-watch-tls-$$

apt_install openssl:openssl psql:postgresql-client redis-cli:redis-tools mariadb:mariadb-client
# Runs last of what this file stops (STOPS run newest first): MariaDB ends
# (its PID is also in PIDS), then the data directories go.
STOPS+=("bash -c 'p=\$(cat $tls_run/mariadb/mysqld.pid 2>/dev/null); if [ -n \"\$p\" ]; then kill \$p 2>/dev/null; for _ in \$(seq 100); do kill -0 \$p 2>/dev/null || break; sleep 0.2; done; fi; rm -rf $tls_run'")
test_ca
# "The wrong CA": a CA that signed none of the certificates.
(
  flock 9
  cd "$tls_certs" || exit 1
  if ! openssl x509 -in other-ca.crt -noout -checkend 2592000 >/dev/null 2>&1; then
    log "test CA: making other-ca.crt (a CA that signed nothing) in $tls_certs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=axum-watch other CA" \
      -keyout other-ca.key -out other-ca.crt \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 644 other-ca.crt
    chmod 600 other-ca.key
  fi
) 9>"$tls_certs/.lock"

# tls_copy DIR OWNER: the server certificate, key and CA in DIR, readable by OWNER only.
tls_copy() {
  install -d -m 700 "$1"
  install -m 644 "$tls_certs/ca.crt" "$1/ca.crt"
  install -m 644 "$tls_certs/server.crt" "$1/server.crt"
  install -m 600 "$tls_certs/server.key" "$1/server.key"
  [ "$(id -u)" -eq 0 ] && chown -R "$2:" "$1"
  return 0
}
# tls_as USER CMD...: CMD as USER when this runs as root (servers refuse to run as root).
tls_as() {
  local user=$1
  shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}
# A handshake whose certificate chains to the test CA and names 127.0.0.1.
tls_handshake() {
  timeout 5 openssl s_client -connect "127.0.0.1:$1" -CAfile "$tls_certs/ca.crt" -verify_return_error \
    -verify_ip 127.0.0.1 ${2:+-starttls "$2"} </dev/null >/dev/null 2>&1
}

# --- PostgreSQL -------------------------------------------------------------
tls_pg_url="postgres://postgres@127.0.0.1:$TLS_PG_PORT/test"
tls_pg_answers() {
  [ "$(psql "$tls_pg_url?sslmode=verify-full&sslrootcert=$tls_certs/ca.crt" -XtAc 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>/dev/null)" = "t" ]
}
if tls_pg_answers; then
  echo "  PostgreSQL with TLS answers on 127.0.0.1:$TLS_PG_PORT (it ran before this script: left running)"
else
  log "starting PostgreSQL with TLS on 127.0.0.1:$TLS_PG_PORT"
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$pg_bin/initdb" ] || { echo "tls: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }
  pg_owner=postgres
  [ "$(id -u)" -eq 0 ] || pg_owner=$(id -un)
  pg_dir=$tls_run/postgres
  install -d -m 755 "$tls_run"
  install -d -m 700 "$pg_dir"
  [ "$(id -u)" -eq 0 ] && chown "$pg_owner:" "$pg_dir"
  tls_as "$pg_owner" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust --no-sync >"$SERVICE_LOGS/postgres-tls-initdb.log" 2>&1 ||
    { echo "tls: initdb failed (see $SERVICE_LOGS/postgres-tls-initdb.log)" >&2; exit 1; }
  tls_copy "$pg_dir/certs" "$pg_owner"
  # pg_ctl writes its log as the server's user.
  : >"$SERVICE_LOGS/postgres-tls.log"
  [ "$(id -u)" -eq 0 ] && chown "$pg_owner:" "$SERVICE_LOGS/postgres-tls.log"
  cat >>"$pg_dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $TLS_PG_PORT
unix_socket_directories = '$pg_dir'
fsync = off
ssl = on
ssl_cert_file = '$pg_dir/certs/server.crt'
ssl_key_file = '$pg_dir/certs/server.key'
ssl_ca_file = '$pg_dir/certs/ca.crt'
EOF
  # TLS connections only, trusted without a password.
  printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n' >"$pg_dir/data/pg_hba.conf"
  tls_as "$pg_owner" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$SERVICE_LOGS/postgres-tls.log" -w -t 30 start >/dev/null ||
    { echo "tls: PostgreSQL did not start (see $SERVICE_LOGS/postgres-tls.log)" >&2; exit 1; }
  STOPS+=("$( [ "$(id -u)" -eq 0 ] && printf 'runuser -u %s -- ' "$pg_owner")$pg_bin/pg_ctl -D $pg_dir/data -m fast -w stop")
  echo "  started PostgreSQL with TLS (data in $pg_dir); stopped on exit"
  tls_as "$pg_owner" "$pg_bin/psql" -h "$pg_dir" -p "$TLS_PG_PORT" -U postgres -XqAc 'CREATE DATABASE test' postgres >/dev/null
  wait_until 15 tls_pg_answers || { echo "tls: no verified TLS session with PostgreSQL on 127.0.0.1:$TLS_PG_PORT" >&2; exit 1; }
fi

# --- Redis ------------------------------------------------------------------
# tls_redis PORT CLIENTS: a TLS-only redis-server, client certificates CLIENTS (optional|yes).
tls_redis() {
  if tls_handshake "$1"; then
    echo "  Redis with TLS answers on 127.0.0.1:$1 (it ran before this script: left running)"
    return 0
  fi
  log "starting Redis with TLS on 127.0.0.1:$1 (client certificates: $2)"
  spawn "redis-tls-$1" redis-server --port 0 --tls-port "$1" --bind 127.0.0.1 \
    --tls-cert-file "$tls_certs/server.crt" --tls-key-file "$tls_certs/server.key" \
    --tls-ca-cert-file "$tls_certs/ca.crt" --tls-auth-clients "$2" \
    --save "" --appendonly no --dir "${TMPDIR:-/tmp}"
  wait_until 10 port_open "$1" || { echo "tls: redis-server did not listen on 127.0.0.1:$1 (see $SERVICE_LOGS/redis-tls-$1.log)" >&2; exit 1; }
}
tls_redis "$TLS_REDIS_PORT" optional
tls_redis "$TLS_REDIS_MTLS_PORT" yes
[ "$(redis-cli --tls --cacert "$tls_certs/ca.crt" -h 127.0.0.1 -p "$TLS_REDIS_PORT" ping 2>/dev/null)" = "PONG" ] ||
  { echo "tls: Redis on 127.0.0.1:$TLS_REDIS_PORT does not answer PING over TLS" >&2; exit 1; }
[ "$(redis-cli --tls --cacert "$tls_certs/ca.crt" --cert "$tls_certs/client.crt" --key "$tls_certs/client.key" \
  -h 127.0.0.1 -p "$TLS_REDIS_MTLS_PORT" ping 2>/dev/null)" = "PONG" ] ||
  { echo "tls: Redis on 127.0.0.1:$TLS_REDIS_MTLS_PORT does not answer PING with the client certificate" >&2; exit 1; }

# --- MariaDB ----------------------------------------------------------------
tls_mariadb_answers() {
  [[ "$(mariadb --protocol=tcp -h 127.0.0.1 -P "$TLS_MARIADB_PORT" -u axum --ssl --ssl-ca="$tls_certs/ca.crt" \
    --ssl-verify-server-cert -N -B -e "SHOW STATUS LIKE 'Ssl_version'" test 2>/dev/null | cut -f2)" = TLSv1.[23] ]]
}
if tls_mariadb_answers; then
  echo "  MariaDB with TLS answers on 127.0.0.1:$TLS_MARIADB_PORT (it ran before this script: left running)"
else
  log "starting MariaDB with TLS on 127.0.0.1:$TLS_MARIADB_PORT"
  [ -x /usr/sbin/mariadbd ] || { echo "tls: /usr/sbin/mariadbd is not installed" >&2; exit 1; }
  my_owner=mysql
  [ "$(id -u)" -eq 0 ] || my_owner=$(id -un)
  my_dir=$tls_run/mariadb
  install -d -m 755 "$tls_run"
  install -d -m 700 "$my_dir"
  [ "$(id -u)" -eq 0 ] && chown "$my_owner:" "$my_dir"
  tls_copy "$my_dir/certs" "$my_owner"
  mariadb-install-db --no-defaults --datadir="$my_dir/data" --user="$my_owner" --auth-root-authentication-method=normal \
    --skip-test-db >"$SERVICE_LOGS/mariadb-tls-install.log" 2>&1 ||
    { echo "tls: mariadb-install-db failed (see $SERVICE_LOGS/mariadb-tls-install.log)" >&2; exit 1; }
  my_user=()
  [ "$(id -u)" -eq 0 ] && my_user=(--user=mysql)
  spawn mariadb-tls /usr/sbin/mariadbd --no-defaults "${my_user[@]}" --datadir="$my_dir/data" \
    --port="$TLS_MARIADB_PORT" --bind-address=127.0.0.1 --socket="$my_dir/mysqld.sock" --pid-file="$my_dir/mysqld.pid" \
    --skip-name-resolve --require-secure-transport=ON --innodb-flush-log-at-trx-commit=0 \
    --innodb-buffer-pool-size=32M --innodb-log-file-size=8M \
    --ssl-cert="$my_dir/certs/server.crt" --ssl-key="$my_dir/certs/server.key" --ssl-ca="$my_dir/certs/ca.crt"
  unset my_user
  wait_until 30 test -S "$my_dir/mysqld.sock" ||
    { echo "tls: MariaDB did not start (see $SERVICE_LOGS/mariadb-tls.log)" >&2; exit 1; }
  wait_until 10 mariadb --no-defaults -S "$my_dir/mysqld.sock" -u root -e 'SELECT 1' >/dev/null 2>&1
  mariadb --no-defaults -S "$my_dir/mysqld.sock" -u root -e \
    "CREATE DATABASE IF NOT EXISTS test; CREATE USER IF NOT EXISTS 'axum'@'%' REQUIRE SSL; GRANT ALL ON test.* TO 'axum'@'%';" ||
    { echo "tls: could not create the axum user in MariaDB" >&2; exit 1; }
  wait_until 15 tls_mariadb_answers || { echo "tls: no verified TLS session with MariaDB on 127.0.0.1:$TLS_MARIADB_PORT" >&2; exit 1; }
fi

export AXUM_WATCH_POSTGRES_TLS_URL="${AXUM_WATCH_POSTGRES_TLS_URL:-$tls_pg_url}"
export AXUM_WATCH_REDIS_TLS_URL="${AXUM_WATCH_REDIS_TLS_URL:-rediss://127.0.0.1:$TLS_REDIS_PORT}"
export AXUM_WATCH_REDIS_MTLS_URL="${AXUM_WATCH_REDIS_MTLS_URL:-rediss://127.0.0.1:$TLS_REDIS_MTLS_PORT}"
export AXUM_WATCH_MYSQL_TLS_URL="${AXUM_WATCH_MYSQL_TLS_URL:-mysql://axum@127.0.0.1:$TLS_MARIADB_PORT/test?prefer_socket=false}"
export AXUM_WATCH_TLS_CA="${AXUM_WATCH_TLS_CA:-$tls_certs/ca.crt}"
export AXUM_WATCH_TLS_OTHER_CA="${AXUM_WATCH_TLS_OTHER_CA:-$tls_certs/other-ca.crt}"
export AXUM_WATCH_TLS_CLIENT_CERT="${AXUM_WATCH_TLS_CLIENT_CERT:-$tls_certs/client.crt}"
export AXUM_WATCH_TLS_CLIENT_KEY="${AXUM_WATCH_TLS_CLIENT_KEY:-$tls_certs/client.key}"
unset -f tls_copy tls_as tls_handshake tls_pg_answers tls_redis tls_mariadb_answers
