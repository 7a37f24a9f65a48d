# PostgreSQL for the postgres and sqlx probe tests. It already runs on every
# machine of the project (127.0.0.1:5432, trust authentication, databases
# test, root and postgres); this only checks that it answers, restarting the
# cluster when it does not. A restarted cluster is left running like the
# machine's own (it is not added to PIDS).
export AXUM_WATCH_POSTGRES_URL="${AXUM_WATCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

apt_install psql:postgresql-client

postgres_shown_url() { printf '%s' "$AXUM_WATCH_POSTGRES_URL" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'; }

postgres_answers() {
  [ "$(psql "$AXUM_WATCH_POSTGRES_URL" -XtAc 'SELECT 1' 2>/dev/null)" = "1" ]
}

if ! postgres_answers; then
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in /etc/postgresql/*; do
      pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
    done
  fi
  for _ in $(seq 1 30); do
    postgres_answers && break
    sleep 1
  done
  postgres_answers || {
    echo "PostgreSQL does not answer at $(postgres_shown_url) (tried pg_ctlcluster ... main start for 30 s)" >&2
    exit 1
  }
fi
echo "  PostgreSQL answers at $(postgres_shown_url)"
