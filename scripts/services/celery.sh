# Two Celery workers for the celery probe tests, from a virtualenv with
# celery[redis] (kombu's Redis transport also needs packaging): one on Redis
# (127.0.0.1:6379, db $CELERY_REDIS_DB) and one on RabbitMQ (127.0.0.1:5672,
# vhost /), each with its own node name. The thread pool keeps each worker a
# single process (stopped by PID) that still answers control broadcasts while
# a task runs, which the detailed-mode test needs.

# The AMQP worker needs RabbitMQ up for good (rabbitmq.sh may restart it).
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/rabbitmq.sh"

CELERY_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/axum-watch/celery-venv"
CELERY_APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../crates/axum-watch-tests/tests/fixtures/celery" && pwd)"
CELERY_REDIS_DB=3
CELERY_REDIS_BROKER="redis://127.0.0.1:6379/$CELERY_REDIS_DB"
CELERY_AMQP_BROKER="amqp://guest:guest@127.0.0.1:5672//"
CELERY_REDIS_NODE="axum-watch-redis@ci"
CELERY_AMQP_NODE="axum-watch-amqp@ci"

log "celery workers $CELERY_REDIS_NODE (redis) and $CELERY_AMQP_NODE (rabbitmq)"
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
if ! "$CELERY_VENV/bin/python" -c 'import celery, redis, packaging' >/dev/null 2>&1; then
  python3 -m venv "$CELERY_VENV" 2>/dev/null || { apt_install virtualenv:python3-venv; python3 -m venv "$CELERY_VENV"; }
  "$CELERY_VENV/bin/pip" install -q 'celery[redis]' packaging >/dev/null
fi

# Answers when `node` replies to a ping through `broker` within 2 s.
celery_node_up() {
  (cd "$CELERY_APP_DIR" && CELERY_BROKER_URL="$1" "$CELERY_VENV/bin/celery" -A tasks inspect ping \
    -d "$2" --timeout 2 --json 2>/dev/null) | grep -q "\"$2\""
}

celery_start() {
  local broker=$1 node=$2
  celery_node_up "$broker" "$node" && return 0
  (cd "$CELERY_APP_DIR" && exec env CELERY_BROKER_URL="$broker" "$CELERY_VENV/bin/celery" -A tasks worker \
    -n "$node" --pool=threads --concurrency=2 --without-gossip --without-mingle --without-heartbeat \
    --loglevel=WARNING >"/tmp/axum-watch-celery-${node%%@*}.log" 2>&1) &
  PIDS+=("$!")
  for _ in $(seq 1 30); do
    celery_node_up "$broker" "$node" && return 0
    sleep 1
  done
  echo "celery worker $node did not answer a ping in time; see /tmp/axum-watch-celery-${node%%@*}.log" >&2
  exit 1
}

celery_start "$CELERY_REDIS_BROKER" "$CELERY_REDIS_NODE"
celery_start "$CELERY_AMQP_BROKER" "$CELERY_AMQP_NODE"
export AXUM_WATCH_CELERY_REDIS_BROKER="$CELERY_REDIS_BROKER"
export AXUM_WATCH_CELERY_AMQP_BROKER="$CELERY_AMQP_BROKER"
export AXUM_WATCH_CELERY_REDIS_NODE="$CELERY_REDIS_NODE"
export AXUM_WATCH_CELERY_AMQP_NODE="$CELERY_AMQP_NODE"
export AXUM_WATCH_CELERY_PYTHON="$CELERY_VENV/bin/python"
