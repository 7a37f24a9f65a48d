# shellcheck shell=bash source-path=SCRIPTDIR
# Redis and PostgreSQL for the shared-storage tests (tests/replicas_redis.rs,
# tests/replicas_postgres.rs): the same servers and addresses as the probe
# tests, so this sources redis.sh and postgres.sh (which start them when they
# do not answer) and checks that `redis-server` is installed: the outage
# test starts (and kills) a throwaway one on a free loopback port.
# Uses AXUM_WATCH_REDIS_URL and AXUM_WATCH_POSTGRES_URL.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=redis.sh
. "$(dirname "${BASH_SOURCE[0]}")/redis.sh"
# shellcheck source=postgres.sh
. "$(dirname "${BASH_SOURCE[0]}")/postgres.sh"

log "shared-storage stores: Redis at $(shown_url "$AXUM_WATCH_REDIS_URL"), PostgreSQL at $(shown_url "${AXUM_WATCH_POSTGRES_URL%%\?*}")"
command -v redis-server >/dev/null || { echo "replicas-stores: redis-server is not installed" >&2; exit 1; }
[ "$(redis-cli -u "$AXUM_WATCH_REDIS_URL" ping 2>/dev/null)" = "PONG" ] ||
  { echo "replicas-stores: Redis at $(shown_url "$AXUM_WATCH_REDIS_URL") does not answer PING" >&2; exit 1; }
