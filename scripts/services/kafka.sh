# A Kafka-protocol broker for the kafka probe tests. Apache Kafka cannot be
# had on these machines (not in Debian, download sites unreachable), so this
# runs Tansu, a Kafka-compatible broker from crates.io, with in-memory
# storage on 127.0.0.1:$KAFKA_PORT. The first install builds for about 16
# minutes; the binary lives outside the repository (~/.cargo/bin) and is
# reused.

KAFKA_PORT=9092

kafka_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

log "kafka protocol (tansu) on 127.0.0.1:$KAFKA_PORT"
if ! kafka_port_open "$KAFKA_PORT"; then
  TANSU="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"
  # An install already under way (another checkout of this repository)
  # is waited for rather than started twice.
  for _ in $(seq 1 360); do
    [ ! -x "$TANSU" ] && pgrep -f 'cargo install tansu' >/dev/null 2>&1 || break
    sleep 5
  done
  if [ ! -x "$TANSU" ]; then
    log "installing tansu (cargo install, about 16 minutes)"
    cargo install tansu --locked --features dynostore
  fi
  "$TANSU" broker \
    --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine memory://tansu/ >/tmp/axum-watch-tansu.log 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 60); do
    kafka_port_open "$KAFKA_PORT" && break
    sleep 0.5
  done
  if ! kafka_port_open "$KAFKA_PORT"; then
    echo "tansu did not listen on 127.0.0.1:$KAFKA_PORT within 30 s; see /tmp/axum-watch-tansu.log" >&2
    exit 1
  fi
fi
export AXUM_WATCH_KAFKA_BOOTSTRAP="${AXUM_WATCH_KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"
