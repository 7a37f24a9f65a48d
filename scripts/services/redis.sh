# Redis runs on every machine of the project (127.0.0.1:6379, no password);
# this only checks that it answers, starting it again if it stopped.
# Exports AXUM_WATCH_REDIS_URL for tests/probes_redis.rs.

redis_answers() {
  ( exec 3<>"/dev/tcp/127.0.0.1/6379" && printf 'PING\r\n' >&3 && IFS= read -r -t 2 reply <&3 && [[ $reply == "+PONG"* ]] ) 2>/dev/null
}

if ! redis_answers; then
  log "redis: not answering on 127.0.0.1:6379, starting it"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null
  for _ in $(seq 1 50); do redis_answers && break; sleep 0.2; done
  redis_answers || { echo "redis: no answer on 127.0.0.1:6379 after 10 s" >&2; exit 1; }
fi
export AXUM_WATCH_REDIS_URL="${AXUM_WATCH_REDIS_URL:-redis://127.0.0.1:6379}"
unset -f redis_answers
