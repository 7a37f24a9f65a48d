# shellcheck shell=bash source-path=SCRIPTDIR
# Two Celery workers for the celery probe tests, from a virtualenv with
# celery[redis] (kombu's Redis transport also needs packaging): one on Redis
# (127.0.0.1:6379, db $CELERY_REDIS_DB) and one on RabbitMQ (127.0.0.1:5672,
# vhost /), each with its own node name. The thread pool keeps each worker a
# single process (stopped by PID) that still answers control broadcasts while
# a task runs, which the detailed-mode test needs. Workers already answering
# are reused and left running; the ones started here are stopped by PID on
# exit.
# Exports AXUM_WATCH_CELERY_{REDIS,AMQP}_{BROKER,NODE} and AXUM_WATCH_CELERY_PYTHON.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# The workers need both brokers up for good (rabbitmq.sh may restart RabbitMQ).
# shellcheck source=redis.sh
. "$(dirname "${BASH_SOURCE[0]}")/redis.sh"
# shellcheck source=rabbitmq.sh
. "$(dirname "${BASH_SOURCE[0]}")/rabbitmq.sh"

CELERY_VENV="$AXUM_WATCH_CACHE/celery-venv"
CELERY_APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../crates/axum-watch-tests/tests/fixtures/celery" && pwd)"
CELERY_REDIS_DB=3
CELERY_REDIS_BROKER="redis://127.0.0.1:6379/$CELERY_REDIS_DB"
CELERY_AMQP_BROKER="amqp://guest:guest@127.0.0.1:5672//"
CELERY_REDIS_NODE="axum-watch-redis@ci"
CELERY_AMQP_NODE="axum-watch-amqp@ci"

log "celery workers $CELERY_REDIS_NODE (redis) and $CELERY_AMQP_NODE (rabbitmq)"
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
  if celery_node_up "$broker" "$node"; then
    echo "  celery worker $node answers (not started by this run: left running)"
    return 0
  fi
  spawn "celery-${node%%@*}" env -C "$CELERY_APP_DIR" CELERY_BROKER_URL="$broker" "$CELERY_VENV/bin/celery" -A tasks worker \
    -n "$node" --pool=threads --concurrency=2 --without-gossip --without-mingle --without-heartbeat \
    --loglevel=WARNING
  for _ in $(seq 1 30); do
    celery_node_up "$broker" "$node" && return 0
    sleep 1
  done
  echo "celery worker $node did not answer a ping in time; see $SERVICE_LOGS/celery-${node%%@*}.log" >&2
  exit 1
}

celery_start "$CELERY_REDIS_BROKER" "$CELERY_REDIS_NODE"
celery_start "$CELERY_AMQP_BROKER" "$CELERY_AMQP_NODE"
export AXUM_WATCH_CELERY_REDIS_BROKER="$CELERY_REDIS_BROKER"
export AXUM_WATCH_CELERY_AMQP_BROKER="$CELERY_AMQP_BROKER"
export AXUM_WATCH_CELERY_REDIS_NODE="$CELERY_REDIS_NODE"
export AXUM_WATCH_CELERY_AMQP_NODE="$CELERY_AMQP_NODE"
export AXUM_WATCH_CELERY_PYTHON="$CELERY_VENV/bin/python"
