# shellcheck shell=bash source-path=SCRIPTDIR
# MariaDB for the mysql and sqlx probe tests. It runs on every machine of the
# project before this script (127.0.0.1:3306, user root with an empty
# password, database test); then it is only checked and left running. When
# it does not answer, this starts mariadbd in the background and stops it by
# PID on exit.
# Exports AXUM_WATCH_MYSQL_URL.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export AXUM_WATCH_MYSQL_URL="${AXUM_WATCH_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"

apt_install mariadb:mariadb-client

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

if mariadb_answers; then
  echo "  MariaDB answers at $(shown_url "$AXUM_WATCH_MYSQL_URL") (it ran before this script: left running)"
else
  log "starting MariaDB"
  [ -x /usr/sbin/mariadbd ] || { echo "MariaDB does not answer and /usr/sbin/mariadbd is not installed" >&2; exit 1; }
  mariadb_user=()
  if [ "$(id -u)" -eq 0 ]; then
    install -d -o mysql -g mysql /run/mysqld
    mariadb_user=(--user=mysql)
  fi
  spawn mariadb /usr/sbin/mariadbd "${mariadb_user[@]}"
  unset mariadb_user
  wait_until 30 mariadb_answers || {
    echo "MariaDB does not answer at $(shown_url "$AXUM_WATCH_MYSQL_URL") within 30 s (see $SERVICE_LOGS/mariadb.log)" >&2
    exit 1
  }
fi
unset -f mariadb_args mariadb_answers
