# Redis and PostgreSQL for the shared-storage tests (tests/replicas_redis.rs,
# tests/replicas_postgres.rs). Both already run on every machine, so this only
# checks that they answer, and that `redis-server` is installed: the outage
# test starts (and kills) a throwaway one on a free loopback port.
# Sourced by scripts/test, which defines log, apt_install and PIDS.

apt_install redis-server:redis-server redis-cli:redis-tools psql:postgresql-client

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export POSTGRES_URL="${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

replicas_stores_wait() {
  local what=$1
  shift
  local tries=0
  until "$@" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
      echo "replicas-stores: $what does not answer after 30 s; start it (see /work/shared/SERVICES.md or the machine's docs)" >&2
      exit 1
    fi
    sleep 0.5
  done
}

replicas_stores_redis_ping() { [ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = "PONG" ]; }

log "shared-storage stores: Redis at ${REDIS_URL}, PostgreSQL at ${POSTGRES_URL%%\?*}"
replicas_stores_wait "Redis at $REDIS_URL" replicas_stores_redis_ping
replicas_stores_wait "PostgreSQL" psql "$POSTGRES_URL" -tAc 'SELECT 1'
