# shellcheck shell=bash source-path=SCRIPTDIR
# Redis for tests/probes_redis.rs (127.0.0.1:6379, no password). It runs on
# every machine of the project before this script; then it is only checked
# and left running. When it does not answer, this starts one (keeping
# nothing on disk), which is stopped by PID on exit.
# Exports AXUM_WATCH_REDIS_URL.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
service_once redis || return 0

apt_install redis-server:redis-server redis-cli:redis-tools

redis_answers() {
  ( exec 3<>"/dev/tcp/127.0.0.1/6379" && printf 'PING\r\n' >&3 && IFS= read -r -t 2 reply <&3 && [[ $reply == "+PONG"* ]] ) 2>/dev/null
}

if redis_answers; then
  echo "  redis answers on 127.0.0.1:6379 (it ran before this script: left running)"
else
  log "redis: not answering on 127.0.0.1:6379, starting it"
  spawn redis redis-server --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir "${TMPDIR:-/tmp}"
  wait_until 10 redis_answers || { echo "redis: no answer on 127.0.0.1:6379 after 10 s (see $SERVICE_LOGS/redis.log)" >&2; exit 1; }
fi
export AXUM_WATCH_REDIS_URL="${AXUM_WATCH_REDIS_URL:-redis://127.0.0.1:6379}"
unset -f redis_answers
