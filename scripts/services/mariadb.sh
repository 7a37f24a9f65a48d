# MariaDB for the mysql and sqlx probe tests. It already runs on every
# machine of the project (127.0.0.1:3306, user root with an empty password,
# database test); this only checks that it answers over TCP, starting the
# server when it does not. A started server is left running like the
# machine's own (it is not added to PIDS).
export AXUM_WATCH_MYSQL_URL="${AXUM_WATCH_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"

apt_install mariadb:mariadb-client

mariadb_shown_url() { printf '%s' "$AXUM_WATCH_MYSQL_URL" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'; }

# mysql://user[:password]@host[:port][/database] → client arguments.
mariadb_args() {
  local rest=${AXUM_WATCH_MYSQL_URL#*://} auth hostport user password host port database
  auth=${rest%%@*}
  rest=${rest#*@}
  hostport=${rest%%/*}
  database=${rest#"$hostport"}
  database=${database#/}
  database=${database%%\?*}
  user=${auth%%:*}
  password=
  [ "$auth" != "$user" ] && password=${auth#*:}
  host=${hostport%%:*}
  port=3306
  [ "$hostport" != "$host" ] && port=${hostport#*:}
  printf '%s\n' --protocol=tcp -h "$host" -P "$port" -u "$user" ${password:+"-p$password"} ${database:+"$database"}
}

mariadb_answers() {
  local args
  mapfile -t args < <(mariadb_args)
  [ "$(mariadb "${args[@]}" -N -B -e 'SELECT 1' 2>/dev/null)" = "1" ]
}

if ! mariadb_answers; then
  log "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do
    mariadb_answers && break
    sleep 1
  done
  mariadb_answers || {
    echo "MariaDB does not answer at $(mariadb_shown_url) (tried starting /usr/sbin/mariadbd for 30 s)" >&2
    exit 1
  }
fi
echo "  MariaDB answers at $(mariadb_shown_url)"
