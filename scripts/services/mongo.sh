# A MongoDB wire-protocol responder for the mongo probe tests. No real mongod
# can be installed here (not in Debian, download installers fail), so the
# probe is tested against MockupDB (Debian's python3-mockupdb, run with
# Debian's /usr/bin/python3): 127.0.0.1:$MONGO_PORT answers like a MongoDB
# 7.0 standalone, $MONGO_PORT+1 refuses serverStatus and answers ping on the
# database "slow" after 3 s (see tests/fixtures/mongo/responder.py).

MONGO_PORT=27017
MONGO_RESPONDER="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../crates/axum-watch-tests/tests/fixtures/mongo" && pwd)/responder.py"

mongo_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

log "mongodb wire-protocol responder (MockupDB) on 127.0.0.1:$MONGO_PORT and :$((MONGO_PORT + 1))"
if ! mongo_port_open "$MONGO_PORT" || ! mongo_port_open "$((MONGO_PORT + 1))"; then
  /usr/bin/python3 -c 'import mockupdb' >/dev/null 2>&1 || apt_install python3-mockupdb:python3-mockupdb
  /usr/bin/python3 "$MONGO_RESPONDER" "$MONGO_PORT" >/tmp/axum-watch-mockupdb.log 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 50); do
    mongo_port_open "$MONGO_PORT" && mongo_port_open "$((MONGO_PORT + 1))" && break
    sleep 0.2
  done
  if ! mongo_port_open "$MONGO_PORT" || ! mongo_port_open "$((MONGO_PORT + 1))"; then
    echo "the MockupDB responder did not listen within 10 s; see /tmp/axum-watch-mockupdb.log" >&2
    exit 1
  fi
fi
export AXUM_WATCH_MONGO_URL="${AXUM_WATCH_MONGO_URL:-mongodb://127.0.0.1:$MONGO_PORT/}"
export AXUM_WATCH_MONGO_RESTRICTED_URL="${AXUM_WATCH_MONGO_RESTRICTED_URL:-mongodb://127.0.0.1:$((MONGO_PORT + 1))/}"
