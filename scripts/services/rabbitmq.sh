# RabbitMQ (already running on 127.0.0.1:5672, guest/guest) plus its
# management HTTP API on 127.0.0.1:15672, which the rabbitmq and celery
# probe tests read. The plugin ships with the package and is enabled offline;
# RabbitMQ is restarted only when the API does not answer yet.

RABBITMQ_AMQP_PORT=5672
RABBITMQ_MGMT_PORT=15672

rabbitmq_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
rabbitmq_api_up() {
  curl -fsS -m 3 -u guest:guest "http://127.0.0.1:$RABBITMQ_MGMT_PORT/api/overview" >/dev/null 2>&1
}

log "rabbitmq on 127.0.0.1:$RABBITMQ_AMQP_PORT, management API on 127.0.0.1:$RABBITMQ_MGMT_PORT"
if ! rabbitmq_api_up; then
  command -v rabbitmq-server >/dev/null 2>&1 || { echo "rabbitmq-server is not installed" >&2; exit 1; }
  rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
  # Keep the API on loopback like the AMQP listener.
  if [ -w /etc/rabbitmq/rabbitmq.conf ] && ! grep -q '^management\.tcp\.' /etc/rabbitmq/rabbitmq.conf; then
    printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "$RABBITMQ_MGMT_PORT" >>/etc/rabbitmq/rabbitmq.conf
  fi
  if rabbitmq_port_open "$RABBITMQ_AMQP_PORT"; then
    timeout 60 rabbitmqctl stop >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do rabbitmq_port_open "$RABBITMQ_AMQP_PORT" || break; sleep 1; done
  fi
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 90); do
    rabbitmq_port_open "$RABBITMQ_AMQP_PORT" && rabbitmq_api_up && break
    sleep 1
  done
  if ! rabbitmq_port_open "$RABBITMQ_AMQP_PORT" || ! rabbitmq_api_up; then
    echo "rabbitmq did not come up with its management API within 90 s" >&2
    exit 1
  fi
fi
export AXUM_WATCH_RABBITMQ_URL="${AXUM_WATCH_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:$RABBITMQ_AMQP_PORT/%2f}"
export AXUM_WATCH_RABBITMQ_MANAGEMENT_URL="${AXUM_WATCH_RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:$RABBITMQ_MGMT_PORT}"
