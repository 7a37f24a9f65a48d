# shellcheck shell=bash source-path=SCRIPTDIR
# PostgreSQL for the postgres, sqlx and shared-storage tests. It runs on
# every machine of the project before this script (127.0.0.1:5432, trust
# authentication, databases test, root and postgres); then it is only
# checked and left running. When it does not answer, this starts the
# clusters that are down with pg_ctlcluster and stops those again on exit.
# Exports AXUM_WATCH_POSTGRES_URL.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
service_once postgres || return 0

export AXUM_WATCH_POSTGRES_URL="${AXUM_WATCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

apt_install psql:postgresql-client

postgres_answers() {
  [ "$(psql "$AXUM_WATCH_POSTGRES_URL" -XtAc 'SELECT 1' 2>/dev/null)" = "1" ]
}

if postgres_answers; then
  echo "  PostgreSQL answers at $(shown_url "$AXUM_WATCH_POSTGRES_URL") (it ran before this script: left running)"
else
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for postgres_version in /etc/postgresql/*; do
      postgres_version=$(basename "$postgres_version")
      # Exit code 3: the cluster is down; only those are started (and stopped).
      pg_ctlcluster --skip-systemctl-redirect "$postgres_version" main status >/dev/null 2>&1 && continue
      if pg_ctlcluster --skip-systemctl-redirect "$postgres_version" main start; then
        STOPS+=("pg_ctlcluster --skip-systemctl-redirect $postgres_version main stop -m fast")
        echo "  started PostgreSQL $postgres_version/main; stopped on exit"
      fi
    done
    unset postgres_version
  fi
  wait_until 30 postgres_answers || {
    echo "PostgreSQL does not answer at $(shown_url "$AXUM_WATCH_POSTGRES_URL") (tried pg_ctlcluster ... main start for 30 s)" >&2
    exit 1
  }
fi
unset -f postgres_answers
